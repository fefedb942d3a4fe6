"""Fetching sources: all at once, politely, within limits; local paths and file:// too.

Hostile sources included: a body is counted after inflating it (a small gzip cannot
become a large body), redirects are followed here, each hop to a public address only
(see addresses.py), and whatever goes wrong with one source is that source's error.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import zlib
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest import __version__
from digest.collect.addresses import AddressRefused, origin, pinned_transport
from digest.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = f"digest/{__version__} (newsletter digest; +https://pypi.org/project/digest/)"


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One source to fetch, with what the last fetch left for a conditional GET."""

    key: str  # the source's place in config.toml, e.g. "sources.feeds[1]"
    label: str  # how to name it in a message, e.g. "feed 'news'"
    url: str
    etag: str | None = None
    last_modified: str | None = None
    # The source's own host and port may be a private address (an intranet feed).
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched body (None when the server said 304 Not Modified) and its validators."""

    request: FetchRequest
    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout_seconds: float
    max_bytes: int
    max_redirects: int


def is_local(url: str) -> bool:
    """True for a filesystem path or a file:// URL."""
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/"))


def local_path(url: str, base_dir: Path) -> Path:
    if urlsplit(url).scheme.lower() == "file":
        return Path(unquote(urlsplit(url).path))
    path = Path(url).expanduser()
    return path if path.is_absolute() else base_dir / path


async def fetch_all(
    requests: list[FetchRequest], limits: FetchLimits, base_dir: Path
) -> list[Fetched | SourceError]:
    """Fetch every source concurrently; a failure is returned in its place, never raised."""
    ssl_context = httpx.create_ssl_context()  # built once: loading the CA bundle is slow
    jobs = [_fetch_one(r, limits, base_dir, ssl_context) for r in requests]
    return list(await asyncio.gather(*jobs))


async def _fetch_one(
    request: FetchRequest, limits: FetchLimits, base_dir: Path, ssl_context: ssl.SSLContext
) -> Fetched | SourceError:
    """Never raises: anything that goes wrong becomes this source's error, in plain words."""
    try:
        if is_local(request.url):
            return _read_local(request, limits, base_dir)
        get = _get(request, limits, ssl_context)
        return await asyncio.wait_for(get, limits.timeout_seconds)
    except SourceError as exc:
        return exc
    except (TimeoutError, httpx.TimeoutException):
        return _fail(request, f"timed out after {limits.timeout_seconds:g} s")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return _fail(request, "the URL is not http(s), file:// or a path")
    except httpx.ConnectError as exc:
        return _fail(request, f"could not connect ({_plain(exc)})")
    except httpx.HTTPError as exc:
        return _fail(request, f"the server broke off the answer ({_plain(exc)})")
    except Exception:
        log.debug("fetching %s failed", request.url, exc_info=True)
        return _fail(request, "could not be fetched (an unexpected error: --debug shows it)")


def _plain(exc: Exception) -> str:
    """An httpx error's own words, without the errno ("[Errno 111] Connection refused")."""
    return re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__


def _fail(request: FetchRequest, what: str, hint: str = "") -> SourceError:
    more = f" ({hint})" if hint else ""
    return SourceError(f"{request.label}: {what}: check {request.key}.url in config.toml{more}")


def _too_large(request: FetchRequest, limits: FetchLimits) -> SourceError:
    return _fail(request, f"larger than {limits.max_bytes} bytes (collect.max_bytes)")


def _read_local(request: FetchRequest, limits: FetchLimits, base_dir: Path) -> Fetched:
    path = local_path(request.url, base_dir)
    try:
        stat = path.stat()
        if stat.st_size > limits.max_bytes:
            raise _too_large(request, limits)
        mtime = formatdate(stat.st_mtime, usegmt=True)
        if request.last_modified == mtime:
            return Fetched(request, None, last_modified=mtime)
        return Fetched(request, path.read_bytes(), last_modified=mtime)
    except FileNotFoundError:
        raise _fail(request, f"file {path} does not exist") from None
    except IsADirectoryError:
        raise _fail(request, f"path {path} is a folder, not a file") from None
    except OSError as exc:
        raise _fail(request, f"file {path} cannot be read ({exc.strerror})") from None
    except ValueError:  # a NUL byte in the path
        raise _fail(request, "the URL is not http(s), file:// or a path") from None


async def _get(request: FetchRequest, limits: FetchLimits, ssl_context: ssl.SSLContext) -> Fetched:
    """GET, following at most max_redirects redirects, each hop checked as it connects.

    The transport itself, not an httpx client: nothing but this loop reads a Location."""
    allowed = origin(request.url) if request.allow_private else None
    async with pinned_transport(ssl_context, allowed) as transport:
        url = httpx.URL(request.url)
        for hop in range(limits.max_redirects + 1):
            response = await _send(transport, request, url, hop, limits)
            try:
                if not response.has_redirect_location:
                    return await _read(request, response, limits)
                url = _redirect_target(request, response)
            finally:
                await response.aclose()
    raise _fail(request, f"redirected more than {limits.max_redirects} times")


async def _send(
    transport: httpx.AsyncBaseTransport,
    request: FetchRequest,
    url: httpx.URL,
    hop: int,
    limits: FetchLimits,
) -> httpx.Response:
    _check_scheme(request, url, hop)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, identity"}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    timeout = httpx.Timeout(limits.timeout_seconds).as_dict()
    sent = httpx.Request("GET", url, headers=headers, extensions={"timeout": timeout})
    try:
        response = await transport.handle_async_request(sent)
    except AddressRefused as exc:
        raise _refused(request, url, hop, exc) from None
    response.request = sent
    return response


def _check_scheme(request: FetchRequest, url: httpx.URL, hop: int) -> None:
    if url.scheme in ("http", "https"):
        return
    if hop == 0:
        raise _fail(request, "the URL is not http(s), file:// or a path")
    raise _fail(request, f"redirected to {url}, which is not fetched (only http(s) is followed)")


def _redirect_target(request: FetchRequest, response: httpx.Response) -> httpx.URL:
    location = response.headers["Location"]
    try:
        return response.url.join(location)
    except httpx.InvalidURL:
        raise _fail(request, f"redirected to {location}, which is not a valid URL") from None


def _refused(request: FetchRequest, url: httpx.URL, hop: int, exc: AddressRefused) -> SourceError:
    if not request.allow_private:
        hint = "a source on a private network on purpose sets allow_private = true"
    else:
        hint = "allow_private = true covers the source's own host and port only"
    if hop == 0:
        return _fail(request, f"{url} is not fetched: {exc.why}", hint)
    return _fail(request, f"redirected to {url} ({exc.why}), which is not fetched", hint)


async def _read(request: FetchRequest, response: httpx.Response, limits: FetchLimits) -> Fetched:
    if response.status_code == httpx.codes.NOT_MODIFIED:
        return Fetched(request, None, request.etag, request.last_modified)
    if response.status_code >= 400:
        raise _fail(request, f"returned HTTP {response.status_code}")
    try:
        body = BoundedBody(response.headers.get("Content-Encoding", ""), limits.max_bytes)
        declared = response.headers.get("Content-Length", "")
        if not body.inflates and declared.isdigit() and int(declared) > limits.max_bytes:
            raise _too_large(request, limits)
        async for chunk in response.aiter_raw():
            body.feed(chunk)
        data = body.finish()
    except BodyTooLarge:
        raise _too_large(request, limits) from None
    except BodyRefused as exc:
        raise _fail(request, str(exc)) from None
    return Fetched(
        request,
        data,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        content_type=response.headers.get("Content-Type", ""),
    )


class BodyRefused(Exception):
    """A body that is not read on; the message says why, in plain words."""


class BodyTooLarge(BodyRefused):
    pass


class BoundedBody:
    """A response body as it arrives, gzip inflated on the fly and never past max_bytes:
    counted after inflating, so no answer takes more than max_bytes of memory."""

    def __init__(self, content_encoding: str, max_bytes: int) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        if codings not in ([], ["gzip"], ["x-gzip"]):
            raise BodyRefused(
                f"answered with Content-Encoding {content_encoding.strip()}; "
                "only gzip or none is accepted"
            )
        self.inflates = bool(codings)
        self._max = max_bytes
        self._data = bytearray()
        self._inflater = zlib.decompressobj(wbits=47)  # a gzip (or zlib) header
        self._open = False  # a gzip member started and not ended yet

    def feed(self, chunk: bytes) -> None:
        if not self.inflates:
            self._keep(chunk)
        while self.inflates and chunk:
            self._open = True
            try:  # at most one byte past the limit: enough to know it is too large
                self._keep(self._inflater.decompress(chunk, self._max - len(self._data) + 1))
            except zlib.error:
                raise BodyRefused("sent a gzip body that is corrupt") from None
            if self._inflater.eof:  # the next gzip member, if any
                chunk, self._open = self._inflater.unused_data, False
                self._inflater = zlib.decompressobj(wbits=47)
            else:
                chunk = self._inflater.unconsumed_tail

    def finish(self) -> bytes:
        if self._open:
            raise BodyRefused("sent a gzip body that ends too soon (truncated)")
        return bytes(self._data)

    def _keep(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self._max:
            raise BodyTooLarge(f"larger than {self._max} bytes")
