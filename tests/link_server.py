"""A real HTTP server on 127.0.0.1 for the link check: each path answers HEAD and GET as
told, after a latency, and the server counts what it was asked and how many requests it
was working on at once."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast


@dataclass(frozen=True)
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    head_status: int | None = None  # HEAD answers this instead (405: HEAD refused)
    delay: float = 0.0  # seconds more before answering (past the check's timeout)
    # GET sends its headers, then holds the body back: a client that reads it times out.
    stall_body: bool = False


def moved(location: str, status: int = 301) -> Route:
    return Route(status, {"Location": location})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Room for every connection a test opens at once (the default, 5, drops the rest's
    # first SYN, and the client waits a second to send it again).
    request_queue_size = 64
    routes: dict[str, Route]
    hits: Counter[tuple[str, str]]
    user_agents: set[str]
    latency: float
    busy: int
    peak: int
    lock: threading.Lock
    closing: threading.Event

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up after the headers is what a link check does


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def do_GET(self) -> None:
        self._answer("GET")

    def _answer(self, method: str) -> None:
        server = cast(_Server, self.server)
        path = self.path.split("?", 1)[0]
        route = server.routes.get(path, Route(404))
        with server.lock:
            server.hits[(method, path)] += 1
            server.user_agents.add(self.headers.get("User-Agent", ""))
            server.busy += 1
            server.peak = max(server.peak, server.busy)
        server.closing.wait(server.latency + route.delay)
        with server.lock:  # before answering: the client cannot ask again before this
            server.busy -= 1
        status = route.head_status if method == "HEAD" and route.head_status else route.status
        body = b"<html>a page</html>"
        try:
            self.send_response(status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method == "GET" and route.stall_body:
                self.wfile.flush()
                server.closing.wait(5)
            if method == "GET":
                self.wfile.write(body)
        except OSError:  # the client closed after the headers
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class LinkServer:
    """``with LinkServer(latency=0.2) as server:`` serves ``server.routes`` on
    127.0.0.1:``port``, each answer ``latency`` seconds after the request."""

    def __init__(self, latency: float = 0.0) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.routes = {}
        self._httpd.hits = Counter()
        self._httpd.user_agents = set()
        self._httpd.latency = latency
        self._httpd.busy = self._httpd.peak = 0
        self._httpd.lock = threading.Lock()
        self._httpd.closing = threading.Event()
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def routes(self) -> dict[str, Route]:
        return self._httpd.routes

    @property
    def hits(self) -> Counter[tuple[str, str]]:
        """How many requests each (method, path) had."""
        return self._httpd.hits

    @property
    def requests(self) -> int:
        return sum(self._httpd.hits.values())

    @property
    def peak(self) -> int:
        """The most requests the server was answering at one moment."""
        return self._httpd.peak

    @property
    def user_agents(self) -> set[str]:
        return self._httpd.user_agents

    @property
    def origin(self) -> str:
        """As checks.allow_private_links names it: host:port."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> LinkServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.closing.set()  # wake any handler still sleeping
        self._httpd.shutdown()
        self._httpd.server_close()
