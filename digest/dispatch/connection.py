"""One kept-alive HTTP(S) connection per sending thread, and what became of a POST on it.

Under the official client, urllib opens a connection for every request and closes it
after the answer (a TCP handshake a batch, and a TLS one on api.sendgrid.com). Here a
thread keeps its connection while the server does, and the distinction the ledger lives
by is kept as urllib drew it:

- :class:`NotSent`: connecting, the proxy's tunnel or writing the request failed. The
  request never went out whole, and SendGrid cannot accept a body it did not read to
  its end (Content-Length): safe to retry.
- :class:`NoAnswer`: the request went out and no whole answer came back (a timeout, a
  reset, the connection closed before or within the answer): SendGrid may have accepted
  it, so the batch is uncertain.

A server closes a connection that sat idle. If that close crossed our next request, the
request would be sent into a dying connection and its batch held uncertain, so an idle
connection is reused only when it was last used less than ``IDLE_REUSE`` seconds ago and
nothing waits on its socket (the server's close would: end of file); else it is closed
and a fresh one opened. After an answer saying ``Connection: close`` http.client closes
it itself. Any error closes it, so a late answer is never read as the next request's.

Certificates are checked as urllib checks them (http.client's default context), and
the proxies urllib would use (``https_proxy``, ``http_proxy``, ``no_proxy``) are used.
"""

from __future__ import annotations

import base64
import http.client
import select
import ssl
import time
import urllib.request
from dataclasses import dataclass
from email.message import Message
from urllib.parse import unquote, urlsplit

IDLE_REUSE = 5.0  # seconds; servers close idle connections after tens of seconds


class NotSent(Exception):
    """The request never went out whole: nothing can have been accepted."""


class NoAnswer(Exception):
    """The request went out (or may have) and no whole answer came back."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str  # the status line's phrase
    headers: Message
    body: bytes


@dataclass(frozen=True, slots=True)
class _Proxy:
    host: str
    port: int | None
    auth: dict[str, str]  # Proxy-Authorization, when the proxy's URL carries a user


class KeptAlive:
    """POSTs to one base URL (``https://api.sendgrid.com``, or a fake's ``http://...``,
    perhaps with a path) over one connection, reopened when it must be. One thread's."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        # Told at each post, as urllib told it: a request that never went out.
        self.unusable = "" if parts.scheme in ("http", "https") and parts.hostname else base_url
        self.scheme, self.host, self.port = parts.scheme, parts.hostname or "", parts.port
        self.netloc = parts.netloc.rpartition("@")[2]
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._absolute = False  # through a plain HTTP proxy: the request names the URL
        self._used = 0.0

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        """One POST of ``body`` to the base URL's ``path``: its answer, or NotSent or
        NoAnswer. Other exceptions (a bug) pass through, the connection closed."""
        if self.unusable:
            raise NotSent(f"not an http(s) URL: {self.unusable!r}")
        conn = self._ready()
        target = self.prefix + path
        if self._absolute:
            target = f"{self.scheme}://{self.netloc}{target}"
        try:
            conn.request("POST", target, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise NotSent(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self.close()
            raise
        try:
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise NoAnswer(type(exc).__name__) from exc
        except BaseException:
            self.close()
            raise
        self._used = time.monotonic()
        return Answer(response.status, response.reason, response.headers, data)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _ready(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and not self._reusable(conn):
            self.close()
            conn = None
        if conn is None:
            conn = self._conn = self._open()
        return conn

    def _reusable(self, conn: http.client.HTTPConnection) -> bool:
        sock = conn.sock
        if sock is None:  # closed after a Connection: close answer: reopens by itself
            return True
        if time.monotonic() - self._used >= IDLE_REUSE:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        except (OSError, ValueError):
            return False
        return not readable and not pending  # else the server's close (or more) waits

    def _open(self) -> http.client.HTTPConnection:
        proxy = _proxy_for(self.scheme, self.netloc)
        self._absolute = proxy is not None and self.scheme == "http"
        if self.scheme == "https":
            if proxy is None:
                return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
            conn = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=self.timeout)
            conn.set_tunnel(self.host, self.port, headers=proxy.auth)
            return conn
        if proxy is None:
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return _ProxiedHTTP(proxy, timeout=self.timeout)


class _ProxiedHTTP(http.client.HTTPConnection):
    """A plain HTTP request through a proxy: sent to the proxy, naming the whole URL,
    with the proxy's credentials when it has some."""

    def __init__(self, proxy: _Proxy, *, timeout: float) -> None:
        super().__init__(proxy.host, proxy.port, timeout=timeout)
        self._proxy_auth = proxy.auth

    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        super().putrequest(method, url, True, skip_accept_encoding)
        self.putheader("Host", urlsplit(url).netloc)
        for name, value in self._proxy_auth.items():
            self.putheader(name, value)


def _proxy_for(scheme: str, netloc: str) -> _Proxy | None:
    """The proxy urllib's ProxyHandler would use for this URL (from the environment)."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(netloc):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    parts = urlsplit(proxy)
    auth = {}
    if parts.username is not None and parts.password is not None:
        creds = f"{unquote(parts.username)}:{unquote(parts.password)}".encode()
        auth["Proxy-Authorization"] = "Basic " + base64.b64encode(creds).decode("ascii")
    return _Proxy(parts.hostname or "", parts.port, auth)
