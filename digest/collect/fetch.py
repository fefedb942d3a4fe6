"""Fetching sources: all at once, politely, within limits; local paths and file:// too."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest import __version__
from digest.errors import SourceError

USER_AGENT = f"digest/{__version__} (newsletter digest; +https://pypi.org/project/digest/)"


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One source to fetch, with what the last fetch left for a conditional GET."""

    key: str  # the source's place in config.toml, e.g. "sources.feeds[0]"
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
    async with httpx.AsyncClient(
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        timeout=httpx.Timeout(limits.timeout_seconds),
        headers={"User-Agent": USER_AGENT},
    ) as client:
        jobs = [_fetch_one(client, r, limits, base_dir) for r in requests]
        return list(await asyncio.gather(*jobs))


async def _fetch_one(
    client: httpx.AsyncClient, request: FetchRequest, limits: FetchLimits, base_dir: Path
) -> Fetched | SourceError:
    try:
        if is_local(request.url):
            return _read_local(request, limits, base_dir)
        return await asyncio.wait_for(_get(client, request, limits), limits.timeout_seconds)
    except SourceError as exc:
        return exc
    except (TimeoutError, httpx.TimeoutException):
        return _fail(request, f"timed out after {limits.timeout_seconds:g} s")
    except httpx.TooManyRedirects:
        return _fail(request, f"redirected more than {limits.max_redirects} times")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
        return _fail(request, "the URL is not http(s), file:// or a path")
    except httpx.HTTPError as exc:
        return _fail(request, f"could not connect ({type(exc).__name__}: {exc})")


def _fail(request: FetchRequest, what: str) -> SourceError:
    return SourceError(f"{request.label}: {what}: check {request.key}.url in config.toml")


def _read_local(request: FetchRequest, limits: FetchLimits, base_dir: Path) -> Fetched:
    path = local_path(request.url, base_dir)
    try:
        stat = path.stat()
        if stat.st_size > limits.max_bytes:
            raise _fail(request, f"larger than {limits.max_bytes} bytes (collect.max_bytes)")
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


async def _get(client: httpx.AsyncClient, request: FetchRequest, limits: FetchLimits) -> Fetched:
    headers = {}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    async with client.stream("GET", request.url, headers=headers) as response:
        if response.status_code == httpx.codes.NOT_MODIFIED:
            return Fetched(request, None, request.etag, request.last_modified)
        if response.status_code >= 400:
            raise _fail(request, f"returned HTTP {response.status_code}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise _fail(request, f"larger than {limits.max_bytes} bytes (collect.max_bytes)")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > limits.max_bytes:
                raise _fail(request, f"larger than {limits.max_bytes} bytes (collect.max_bytes)")
        return Fetched(
            request,
            bytes(body),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            content_type=response.headers.get("Content-Type", ""),
        )
