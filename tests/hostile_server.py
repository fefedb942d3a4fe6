"""A real HTTP server on 127.0.0.1 that answers what a hostile source would: compression
bombs, redirects to local addresses, a deeply nested JSON feed, a calendar repeating every
second. Plus the builders for those bodies, cheap enough to make once per test session."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import cast

MB = 1 << 20


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def redirect(location: str) -> Answer:
    return Answer(302, {"Location": location})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Answer]
    hits: Counter[str]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up on a bomb is what we expect, not news


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        path = self.path.split("?", 1)[0]
        server.hits[path] += 1
        answer = server.routes.get(path, Answer(404, body=b"no such route"))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        try:
            self.wfile.write(answer.body)
        except OSError:  # the client stopped reading (a refused bomb)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class HostileServer:
    """``with HostileServer() as server:`` serves ``server.routes`` on 127.0.0.1:``port``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.routes = {}
        self._httpd.hits = Counter()
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def routes(self) -> dict[str, Answer]:
        return self._httpd.routes

    @property
    def hits(self) -> Counter[str]:
        """How many requests each path had."""
        return self._httpd.hits

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- bodies ---------------------------------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    """A real gzip of ``size`` zero bytes (size a multiple of 1 MB), built in well under a
    second: after a full flush, deflate forgets its history, so every 1 MB of zeros
    compresses to the same bytes and one block can be repeated."""
    assert size % MB == 0
    zero = bytes(MB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflate.compress(zero)
    deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zero) + deflate.flush(zlib.Z_FULL_FLUSH)  # history-free now
    crc = 0
    for _ in range(size // MB):
        crc = zlib.crc32(zero, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    final = b"\x03\x00"  # an empty last block
    return header + block * (size // MB) + final + struct.pack("<II", crc, size & 0xFFFFFFFF)


def gzip(data: bytes) -> bytes:
    return zlib.compress(data, 9, wbits=31)


def brotli_of_zeros(size: int) -> bytes:
    import brotli  # a dev dependency, only to build this

    zero = bytes(MB)
    compressor = brotli.Compressor(quality=5)  # 11 is no smaller on zeros, 50 times slower
    parts = [compressor.process(zero) for _ in range(size // MB)]
    return b"".join(parts) + compressor.finish()


def nested_json(size: int) -> bytes:
    """A JSON Feed-looking document nested ``{"a":{"a":…`` about ``size`` bytes deep."""
    depth = size // 6
    return b'{"a":' * depth + b"1" + b"}" * depth


def rss(title: str, when: datetime, *links: str) -> bytes:
    items = "".join(
        f"<item><title>{title} {i}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate><description>Story {i}.</description></item>"
        for i, link in enumerate(links, 1)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title>{items}</channel></rss>"
    ).encode()


def secondly_calendar(start: datetime) -> bytes:
    """One event repeating every second for a day from ``start`` (86,400 occurrences)."""
    first = f"{start:%Y%m%dT%H%M%SZ}"
    until = f"{start + timedelta(days=1):%Y%m%dT%H%M%SZ}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//digest tests//hostile//EN",
        "BEGIN:VEVENT",
        "UID:every-second@hostile.example",
        f"DTSTAMP:{first}",
        f"DTSTART:{first}",
        "DURATION:PT1S",
        f"RRULE:FREQ=SECONDLY;UNTIL={until}",
        "SUMMARY:Every second",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


# --- a name for this machine ------------------------------------------------------------


def loopback_name(hosts: Path = Path("/etc/hosts")) -> str | None:
    """A host name other than localhost that resolves to loopback only, or None."""
    names = []
    if hosts.is_file():
        for line in hosts.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split("#", 1)[0].split()
            names += [n for n in fields[1:] if fields[0].startswith("127.")]
    names.append(socket.gethostname())
    for name in names:
        if name.startswith("localhost"):
            continue
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
        except OSError:
            continue
        if found and all(str(a).startswith("127.") for a in found):
            return name
    return None
