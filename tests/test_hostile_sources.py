"""Hostile sources against a real local server: compression bombs, redirects to local
addresses in every spelling, a redirect loop, a deeply nested JSON feed, a calendar that
repeats every second. Each is one source's error; the run stays small and keeps the rest.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpcore
import pytest
import sqlalchemy as sa

from digest.collect.addresses import AddressRefused, PinnedBackend, checked_addresses, refusal
from digest.collect.fetch import (
    BodyRefused,
    BodyTooLarge,
    BoundedBody,
    Fetched,
    FetchLimits,
    FetchRequest,
    fetch_all,
)
from digest.errors import SourceError
from digest.store.tables import events, items
from tests.conftest import ROOT
from tests.hostile_server import (
    MB,
    Answer,
    HostileServer,
    brotli_of_zeros,
    gzip,
    gzip_of_zeros,
    loopback_name,
    nested_json,
    redirect,
    rss,
    secondly_calendar,
)

RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
MAX_BYTES = 5_000_000
MAX_REDIRECTS = 3
PEAK_RSS_LIMIT_KB = 300 * 1024
NO_NAME = "no host name but localhost resolves to 127.0.0.1 here (/etc/hosts, gethostname)"


@dataclass(frozen=True)
class Bombs:
    br: bytes  # 1 GB of zeros, brotli
    gzip: bytes  # 1 GB of zeros, one gzip layer (about 1 MB)
    gzip_in_gzip: bytes  # that, gzipped again


@pytest.fixture(scope="session")
def bombs() -> Bombs:
    one_gb = gzip_of_zeros(1024 * MB)
    return Bombs(brotli_of_zeros(1024 * MB), one_gb, gzip(one_gb))


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


@pytest.fixture
def other_server() -> Iterator[HostileServer]:
    """Another port on 127.0.0.1: what a redirect from an allow_private source aims at."""
    with HostileServer() as running:
        yield running


def good_feed(title: str, site: str) -> bytes:
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return rss(title, when, f"https://{site}/one", f"https://{site}/two")


def fetch_one(url: str, *, allow_private: bool = True, max_bytes: int = MAX_BYTES) -> object:
    request = FetchRequest("sources.feeds[1]", "feed 'x'", url, allow_private=allow_private)
    limits = FetchLimits(5.0, max_bytes, MAX_REDIRECTS)
    (result,) = asyncio.run(fetch_all([request], limits, Path.cwd()))
    return result


def error_of(result: object) -> str:
    assert isinstance(result, SourceError), f"fetched, not refused: {result!r}"
    return str(result)


# --- the address rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fd12:3456:789a::1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("::ffff:127.0.0.1", "a loopback address written as IPv6"),
        ("::ffff:10.0.0.1", "a private address written as IPv6"),
        ("::ffff:8.8.8.8", "an IPv4 address written as IPv6"),
        ("2002:7f00:1::", "a loopback address inside a 6to4 address"),
        ("192.0.2.10", "a private address"),  # documentation
    ],
)
def test_an_address_that_is_not_public_is_refused_with_a_plain_reason(
    address: str, reason: str
) -> None:
    assert refusal(address) == reason
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700:4700::1111"]
)
def test_a_public_address_is_accepted(address: str) -> None:
    assert refusal(address) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.1", "127.0.0.1"),  # hexadecimal, shortened
        ("127.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ],
)
def test_a_numeric_host_is_judged_by_the_address_it_means(host: str, address: str) -> None:
    with pytest.raises(AddressRefused) as refused:
        asyncio.run(checked_addresses(host, 80))
    assert refused.value.address == address
    assert refused.value.reason == refusal(address)


def test_allow_private_lets_a_private_address_through() -> None:
    assert asyncio.run(checked_addresses("127.0.0.1", 80, allow_private=True)) == ["127.0.0.1"]


def fake_resolver(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> list[str]:
    """socket.getaddrinfo answering each call with the next list of addresses."""
    calls: list[str] = []
    left = list(answers)

    def resolve(host: str, port: Any, *_args: Any, **_kwargs: Any) -> list[Any]:
        calls.append(host)
        found = left.pop(0)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in found]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return calls


class _Recorder(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.connected: list[str] = []

    async def connect_tcp(self, host: str, port: int, *_args: Any, **_kw: Any) -> Any:
        self.connected.append(host)
        raise httpcore.ConnectError("recorded, not connected")


def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A rebinding DNS server: public for the check, loopback for a second look-up.
    calls = fake_resolver(monkeypatch, ["93.184.216.34"], ["127.0.0.1"])
    backend = PinnedBackend()
    recorder = _Recorder()
    monkeypatch.setattr(backend, "_inner", recorder)
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(backend.connect_tcp("rebind.example.org", 80))
    assert calls == ["rebind.example.org"]  # looked up once
    assert recorder.connected == ["93.184.216.34"]  # and connected to what was checked


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_resolver(monkeypatch, ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(AddressRefused, match=re.escape("10.0.0.5, a private address")):
        asyncio.run(checked_addresses("mixed.example.org", 443))


def test_allow_private_covers_one_host_and_port_only(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = PinnedBackend(allowed=("127.0.0.1", 8080))
    recorder = _Recorder()
    monkeypatch.setattr(backend, "_inner", recorder)
    with pytest.raises(httpcore.ConnectError):  # allowed: it got as far as connecting
        asyncio.run(backend.connect_tcp("127.0.0.1", 8080))
    with pytest.raises(AddressRefused):
        asyncio.run(backend.connect_tcp("127.0.0.1", 8081))
    with pytest.raises(AddressRefused):
        asyncio.run(backend.connect_tcp("localhost", 8080))
    assert recorder.connected == ["127.0.0.1"]


# --- the bounded inflater -------------------------------------------------------------


def inflate(encoding: str, body: bytes, max_bytes: int, chunk: int = 1000) -> bytes:
    bounded = BoundedBody(encoding, max_bytes)
    for start in range(0, len(body), chunk):
        bounded.feed(body[start : start + chunk])
    return bounded.finish()


@pytest.mark.parametrize("encoding", ["", "identity", "gzip", "x-gzip", "GZIP"])
def test_a_body_of_exactly_max_bytes_is_accepted(encoding: str) -> None:
    data = os.urandom(5000) + bytes(5000)
    body = gzip(data) if "gzip" in encoding.lower() else data
    assert inflate(encoding, body, max_bytes=len(data)) == data


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_one_byte_more_than_max_bytes_is_refused(encoding: str) -> None:
    data = bytes(10_001)
    body = gzip(data) if encoding else data
    with pytest.raises(BodyTooLarge, match="larger than 10000 bytes"):
        inflate(encoding, body, max_bytes=10_000)


def test_a_gzip_bomb_is_refused_after_max_bytes_of_inflating() -> None:
    bounded = BoundedBody("gzip", 1_000_000)
    bomb = gzip_of_zeros(64 * MB)
    with pytest.raises(BodyTooLarge):
        bounded.feed(bomb)  # one chunk of ~64 KB that would inflate to 64 MB
    assert len(bounded._data) <= 1_000_001


@pytest.mark.parametrize("encoding", ["br", "gzip, gzip", "deflate", "gzip, br", "zstd"])
def test_any_other_or_a_stacked_content_encoding_is_refused(encoding: str) -> None:
    with pytest.raises(BodyRefused, match=f"Content-Encoding {encoding}; only gzip or none"):
        BoundedBody(encoding, MAX_BYTES)


def test_a_truncated_gzip_is_refused() -> None:
    body = gzip(os.urandom(20_000))
    with pytest.raises(BodyRefused, match="ends too soon"):
        inflate("gzip", body[: len(body) // 2], MAX_BYTES)


def test_a_corrupt_gzip_is_refused() -> None:
    body = bytearray(gzip(os.urandom(20_000)))
    body[100:200] = bytes(100)
    with pytest.raises(BodyRefused, match="corrupt"):
        inflate("gzip", bytes(body), MAX_BYTES)


def test_gzip_members_one_after_another_are_one_body() -> None:
    assert inflate("gzip", gzip(b"first ") + gzip(b"second"), MAX_BYTES, chunk=7) == (
        b"first second"
    )


# --- one fetch against the local server -----------------------------------------------


def test_a_local_server_is_fetched_with_allow_private(server: HostileServer) -> None:
    server.routes["/good.xml"] = Answer(200, RSS, good_feed("Good", "good.example.org"))
    result = fetch_one(server.url("/good.xml"))
    assert isinstance(result, Fetched) and result.body and b"Good 1" in result.body


def test_a_gzip_answer_is_inflated(server: HostileServer) -> None:
    feed = good_feed("Zipped", "zip.example.org")
    server.routes["/zipped.xml"] = Answer(200, {**RSS, "Content-Encoding": "gzip"}, gzip(feed))
    result = fetch_one(server.url("/zipped.xml"))
    assert isinstance(result, Fetched) and result.body == feed


def test_a_local_server_without_allow_private_is_refused(server: HostileServer) -> None:
    message = error_of(fetch_one(server.url("/good.xml"), allow_private=False))
    assert f"{server.url('/good.xml')} is not fetched: a loopback address" in message
    assert "sets allow_private = true" in message


def redirect_targets(server: HostileServer, other: HostileServer, tmp_path: Path) -> dict:
    """Case -> (where the redirect points, what the error says). Each target would serve
    the good feed if it were followed."""
    port = server.port
    name = loopback_name()
    targets = {
        "to-localhost": (server.url("/good.xml", "localhost"), "a loopback address"),
        "to-ipv6-loopback": (f"http://[::1]:{port}/good.xml", "(a loopback address)"),
        "to-decimal": (
            f"http://2130706433:{port}/good.xml",
            "(2130706433 is 127.0.0.1, a loopback address)",
        ),
        "to-octal": (f"http://0177.0.0.1:{port}/good.xml", "which is not a valid URL"),
        "to-zero": (f"http://0.0.0.0:{port}/good.xml", "(an unspecified address)"),
        "to-mapped": (
            f"http://[::ffff:127.0.0.1]:{port}/good.xml",
            "(a loopback address written as IPv6)",
        ),
        "to-other-port": (other.url("/good.xml"), "(a loopback address)"),
        "to-file": ((tmp_path / "local.xml").as_uri(), "only http(s) is followed"),
    }
    if name:
        targets["to-host-name"] = (
            server.url("/good.xml", name),
            f"({name} is 127.0.0.1, a loopback address)",
        )
    return targets


CASES = [
    "to-localhost",
    "to-ipv6-loopback",
    "to-decimal",
    "to-octal",
    "to-zero",
    "to-mapped",
    "to-other-port",
    "to-file",
    "to-host-name",
]


@pytest.mark.parametrize("case", CASES)
def test_a_redirect_to_a_local_address_is_refused(
    case: str, server: HostileServer, other_server: HostileServer, tmp_path: Path
) -> None:
    targets = redirect_targets(server, other_server, tmp_path)
    if case not in targets:
        pytest.skip(NO_NAME)
    (tmp_path / "local.xml").write_bytes(good_feed("Local", "local.example.org"))
    for running in (server, other_server):
        running.routes["/good.xml"] = Answer(200, RSS, good_feed("Good", "good.example.org"))
    location, reason = targets[case]
    server.routes["/hop"] = redirect(location)
    message = error_of(fetch_one(server.url("/hop")))
    shown = location.replace("file:///", "file:/")  # how httpx writes a file URL
    assert message.startswith(f"feed 'x': redirected to {shown}")
    assert reason in message
    assert "sources.feeds[1].url" in message
    assert server.hits["/good.xml"] == other_server.hits["/good.xml"] == 0


def test_a_redirect_loop_ends(server: HostileServer) -> None:
    server.routes["/loop"] = redirect("/loop")
    assert "redirected more than 3 times" in error_of(fetch_one(server.url("/loop")))
    assert server.hits["/loop"] == MAX_REDIRECTS + 1


def test_a_host_name_that_resolves_to_loopback_is_refused_and_allowed_by_its_owner(
    server: HostileServer,
) -> None:
    name = loopback_name()
    if name is None:
        pytest.skip(NO_NAME)
    server.routes["/good.xml"] = Answer(200, RSS, good_feed("Good", "good.example.org"))
    url = server.url("/good.xml", name)
    message = error_of(fetch_one(url, allow_private=False))
    assert f"{url} is not fetched: {name} is 127.0.0.1, a loopback address" in message
    assert isinstance(fetch_one(url), Fetched)  # pinned to 127.0.0.1, still by name


def self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_still_checks_the_host_name_while_connecting_to_the_checked_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = loopback_name()
    if name is None:
        pytest.skip(NO_NAME)
    cert_file, key_file = self_signed(name, tmp_path)  # a certificate for the name only
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with HostileServer(tls=tls) as secure:
        secure.routes["/good.xml"] = Answer(200, RSS, good_feed("Secure", "tls.example.org"))
        result = fetch_one(f"https://{name}:{secure.port}/good.xml")
    assert isinstance(result, Fetched) and result.body and b"Secure 1" in result.body


def test_an_unexpected_error_is_the_sources_error_in_plain_words(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: BoundedBody, chunk: bytes) -> None:
        raise ValueError("not enough values to unpack (expected 2, got 1)")

    monkeypatch.setattr(BoundedBody, "feed", broken)
    server.routes["/good.xml"] = Answer(200, RSS, good_feed("Good", "good.example.org"))
    message = error_of(fetch_one(server.url("/good.xml")))
    assert "could not be fetched (an unexpected error" in message
    assert "unpack" not in message and "ValueError" not in message


# --- the whole run, as a process ------------------------------------------------------


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    reason: str | None  # None: a good source; "": any error naming it
    allow_private: bool = True
    kind: str = "feeds"


def hostile_sources(
    server: HostileServer, other: HostileServer, tmp_path: Path, bombs: Bombs
) -> list[Source]:
    def serve(path: str, answer: Answer) -> str:
        server.routes[path] = answer
        return server.url(path)

    feed = good_feed("Good", "good.example.org")
    server.routes["/good.xml"] = other.routes["/good.xml"] = Answer(200, RSS, feed)
    (tmp_path / "local.xml").write_bytes(good_feed("Local", "local.example.org"))
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    calendar = Answer(200, {"Content-Type": "text/calendar"}, secondly_calendar(soon))
    deep = Answer(200, {"Content-Type": "application/feed+json"}, nested_json(MB))
    to_127 = serve("/r/127", redirect(server.url("/good.xml")))
    out = [
        Source("good-http", server.url("/good.xml"), None),
        Source("good-file", "local.xml", None, allow_private=False),
        Source(
            "br-bomb",
            serve("/br", Answer(200, {**RSS, "Content-Encoding": "br"}, bombs.br)),
            "answered with Content-Encoding br; only gzip or none is accepted",
        ),
        Source(
            "gzip-in-gzip",
            serve(
                "/gzgz", Answer(200, {**RSS, "Content-Encoding": "gzip, gzip"}, bombs.gzip_in_gzip)
            ),
            "answered with Content-Encoding gzip, gzip; only gzip or none is accepted",
        ),
        Source(
            "gzip-1gb",
            serve("/gz", Answer(200, {**RSS, "Content-Encoding": "gzip"}, bombs.gzip)),
            f"larger than {MAX_BYTES} bytes (collect.max_bytes)",
        ),
        Source(
            "to-127",  # this source is localhost:port, so 127.0.0.1 is another host
            to_127.replace("127.0.0.1", "localhost"),
            f"redirected to {server.url('/good.xml')} (a loopback address), which is not fetched",
        ),
        Source("redirect-loop", serve("/loop", redirect("/loop")), "redirected more than 3 times"),
        Source(
            "private-without-allow",
            server.url("/good.xml"),
            "is not fetched: a loopback address",
            allow_private=False,
        ),
    ]
    for case, (location, reason) in redirect_targets(server, other, tmp_path).items():
        out.append(Source(case, serve(f"/r/{case}", redirect(location)), reason))
    # Last: their parsing is the collect's, not the fetch's.
    out.append(Source("nested-json", serve("/deep.json", deep), ""))
    out.append(Source("every-second", serve("/secondly.ics", calendar), "", kind="calendars"))
    return out


def config_for(sources: list[Source]) -> str:
    toml = f"[collect]\ntimeout_seconds = 10\nmax_bytes = {MAX_BYTES}\n"
    toml += f"max_redirects = {MAX_REDIRECTS}\n"
    for source in sources:
        toml += f'\n[[sources.{source.kind}]]\nname = "{source.name}"\nurl = "{source.url}"\n'
        if source.allow_private:
            toml += "allow_private = true\n"
    return toml


def peak_rss_kb(pid: int) -> int:
    """The process's high-water mark of resident memory so far (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def run_measured(args: list[str], folder: Path, deadline: float = 60.0) -> tuple[int, str, int]:
    """Run a command; its exit status, its output and its peak RSS in kB, polled from
    /proc (ru_maxrss would start from this test process's size at the fork)."""
    out_file = folder / "collect.out"
    with out_file.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        peak, stop = 0, time.monotonic() + deadline
        while process.poll() is None:
            peak = max(peak, peak_rss_kb(process.pid))
            if time.monotonic() > stop:
                process.kill()
                process.wait()
                so_far = out_file.read_text(encoding="utf-8", errors="replace")
                pytest.fail(f"digest collect ran past {deadline:g} s; its output:\n{so_far}")
            time.sleep(0.02)
    return process.returncode, out_file.read_text(encoding="utf-8", errors="replace"), peak


def test_a_hostile_collect_stays_small_names_each_hostile_source_and_stores_the_rest(
    make_project, tmp_path: Path, server: HostileServer, other_server: HostileServer, bombs
) -> None:
    sources = hostile_sources(server, other_server, tmp_path, bombs)
    project = make_project(config_for(sources))
    args = [sys.executable, "-m", "digest", "collect", "--config", str(project.config)]

    status, output, peak = run_measured(args, tmp_path)
    print(f"hostile collect: peak RSS {peak / 1024:.0f} MB, exit {status}")

    assert "Traceback" not in output, output
    assert status == 0, output  # some sources worked: failures are warnings
    assert 0 < peak < PEAK_RSS_LIMIT_KB, f"peak RSS {peak / 1024:.0f} MB\n{output}"
    lines = output.splitlines()
    counters = {"feeds": 0, "calendars": 0}
    for source in sources:
        counters[source.kind] += 1
        key = f"sources.{source.kind}[{counters[source.kind]}]"
        label = f"{source.kind[:-1]} '{source.name}'"
        named = [line for line in lines if line.startswith("warning:") and label in line]
        if source.reason is None:
            assert named == [], output
            assert f"{label}: 2 new" in output, output
            continue
        assert len(named) == 1, f"{label}: {named}\n{output}"
        assert key in named[0], named[0]
        assert source.reason in named[0], named[0]
    # No redirect reached the feed it pointed at: the only fetch of it is good-http's.
    assert server.hits["/good.xml"] == 1
    assert other_server.hits["/good.xml"] == 0
    with project.engine().connect() as conn:
        stored = dict(
            conn.execute(sa.select(items.c.source, sa.func.count()).group_by(items.c.source)).all()
        )
        upcoming = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    assert stored == {"good-http": 2, "good-file": 2}
    assert upcoming <= 5000  # collect.max_occurrences_per_calendar, at most
