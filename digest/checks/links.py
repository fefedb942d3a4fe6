"""Checking an edition's links before it goes: does each still answer, and where.

Every link is asked for its headers only (HEAD, then GET where HEAD is refused; a body
is never read), a few at a time per host, each within its own time budget. Redirects
are followed here, hop by hop, through the same address rules as collecting (see
``digest.collect.addresses``): a link, or a redirect, into loopback or a private network
is reported, not fetched. Each link ends in one outcome:

- ``ok``: answered 2xx, without a redirect;
- ``redirected``: answered 2xx after one or more redirects (``final_url`` says where);
- ``broken``: 4xx at the end, a refused address, a redirect to something not http(s),
  too many redirects, or not a valid http(s) URL;
- ``unreachable``: 5xx, a timeout, a name that does not resolve, a refused connection;
- ``skipped``: not checked (past ``checks.max_links``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import Engine

from digest.collect.addresses import AddressRefused, origin, pinned_transport
from digest.collect.fetch import USER_AGENT
from digest.config import Settings
from digest.store.checks import CachedLink, cached_links, remember_links

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "redirected", "broken", "unreachable", "skipped")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
SKIPPED = "more than max_links links: not checked (checks.max_links)"

Origin = tuple[str, int]
T = TypeVar("T")
TIMEOUTS_BEFORE_DOWN = 2


class HostDown(Exception):
    """The host did not answer another of the edition's links: not asked again."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What one link answered. ``final_url`` is the last address that answered (the link
    itself when nothing did, or when nothing redirected)."""

    url: str
    outcome: str  # one of OUTCOMES
    status: int | None  # the last HTTP status, None when no answer came
    final_url: str
    detail: str  # a short phrase for staff: "HTTP 404", "timed out after 10 s"
    cached: bool = False


@dataclass(frozen=True, slots=True)
class _Limits:
    timeout_seconds: float
    per_host: int
    max_redirects: int
    allowed: frozenset[Origin]  # (host, port) pairs that may be private


@dataclass(slots=True)
class _Trail:
    """How far one link's check got: what to report when it stops with an exception."""

    link: str
    asking: str  # the URL being asked now
    answered: str  # the last URL that answered
    hops: int = 0
    budget: float = 0.0  # seconds of requests left for this link
    status: int | None = None


class _Hosts:
    """One pinned transport and one turn-taking semaphore per (host, port): at most
    ``per_host`` requests at a time go to one host, whichever link they belong to."""

    def __init__(self, limits: _Limits) -> None:
        self._limits = limits
        self._ssl = httpx.create_ssl_context()  # built once: loading the CA bundle is slow
        self._transports: dict[Origin, httpx.AsyncHTTPTransport] = {}
        self._turns: dict[Origin, asyncio.Semaphore] = {}
        # A host that cannot be reached is not asked again for its other links: a name
        # that does not resolve, a refused connection, or a second timeout.
        self.down: dict[Origin, str] = {}
        self.timeouts: dict[Origin, int] = {}

    def transport(self, where: Origin) -> httpx.AsyncHTTPTransport:
        if where not in self._transports:
            allowed = where if where in self._limits.allowed else None
            self._transports[where] = pinned_transport(self._ssl, allowed)
        return self._transports[where]

    def turn(self, where: Origin) -> asyncio.Semaphore:
        return self._turns.setdefault(where, asyncio.Semaphore(self._limits.per_host))

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()


async def check_links(urls: Sequence[str], settings: Settings) -> list[LinkResult]:
    """Check each distinct URL once, concurrently; one result per URL in the given order.
    One link's trouble is that link's result, never an exception."""
    limits = _limits_of(settings)
    wanted = list(dict.fromkeys(urls))
    hosts = _Hosts(limits)
    try:
        return list(await asyncio.gather(*(_check_one(u, hosts, limits) for u in wanted)))
    finally:
        await hosts.aclose()


def check_links_cached(
    engine: Engine, urls: Sequence[str], settings: Settings, now: datetime
) -> dict[str, LinkResult]:
    """Every distinct URL's result, by URL in the given order: from the cache when it was
    checked within ``checks.link_cache_hours`` of ``now`` (``cached=True``), else checked
    now (at most ``checks.max_links`` of them; the rest ``skipped``) and remembered."""
    wanted = list(dict.fromkeys(urls))
    since = now - timedelta(hours=settings.checks.link_cache_hours)
    with engine.connect() as conn:
        known = cached_links(conn, wanted, since)
    unknown = [u for u in wanted if u not in known]
    to_check = unknown[: settings.checks.max_links]
    checked = _run(check_links(to_check, settings)) if to_check else []
    fresh = [CachedLink(r.url, r.outcome, r.status, r.final_url, r.detail, now) for r in checked]
    with engine.begin() as conn:
        remember_links(conn, fresh)
    results = {r.url: r for r in checked}
    results.update((u, _from_cache(c)) for u, c in known.items())
    for url in unknown[settings.checks.max_links :]:
        results[url] = LinkResult(url, "skipped", None, url, SKIPPED)
    return {u: results[u] for u in wanted}


def _from_cache(link: CachedLink) -> LinkResult:
    return LinkResult(link.url, link.outcome, link.status, link.final_url, link.detail, True)


def _run(job: Coroutine[Any, Any, T]) -> T:
    """Run ``job`` to its end from sync code: here when this thread has no event loop
    running, else on a thread of its own (asyncio.run refuses to nest)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(job)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, job).result()


def _limits_of(settings: Settings) -> _Limits:
    allowed = set()
    for entry in settings.checks.allow_private_links:
        host, _, port = entry.rpartition(":")  # config_checks made sure of host:port
        allowed.add((host.strip("[]").lower(), int(port)))
    return _Limits(
        timeout_seconds=settings.checks.link_timeout_seconds,
        per_host=settings.checks.links_per_host,
        max_redirects=settings.collect.max_redirects,
        allowed=frozenset(allowed),
    )


async def _check_one(link: str, hosts: _Hosts, limits: _Limits) -> LinkResult:
    """Never raises: whatever goes wrong is this link's outcome, in plain words."""
    trail = _Trail(link, link, link, budget=limits.timeout_seconds)
    try:
        return await _follow(trail, hosts, limits)
    except AddressRefused as exc:
        if trail.hops == 0:
            return _end(trail, "broken", f"{trail.asking} ({exc.why}): not checked")
        return _end(trail, "broken", f"redirects to {trail.asking} ({exc.why}): not followed")
    except HostDown as exc:
        detail = f"{exc.why} for another link to this host: not asked again"
        return _end(trail, "unreachable", detail, answered=False)
    except (TimeoutError, httpx.TimeoutException):
        seconds = limits.timeout_seconds
        return _end(trail, "unreachable", f"timed out after {seconds:g} s", answered=False)
    except httpx.ConnectError as exc:
        return _end(trail, "unreachable", f"could not connect ({_plain(exc)})", answered=False)
    except httpx.HTTPError as exc:
        detail = f"the server broke off the answer ({_plain(exc)})"
        return _end(trail, "unreachable", detail, answered=False)
    except Exception:
        log.debug("checking the link %s failed", link, exc_info=True)
        detail = "could not be checked (an unexpected error: --debug shows it)"
        return _end(trail, "unreachable", detail, answered=False)


async def _follow(trail: _Trail, hosts: _Hosts, limits: _Limits) -> LinkResult:
    """Ask the link, then each redirect's target, up to max_redirects of them."""
    try:
        url = httpx.URL(trail.link)
    except httpx.InvalidURL:
        return _end(trail, "broken", "not a valid URL: not checked")
    if url.scheme not in ("http", "https") or not url.host:
        return _end(trail, "broken", "not an http(s) link: not checked")
    while True:
        status, location = await _ask(hosts, url, trail)
        if location is None:
            return _classify(trail, status)
        if trail.hops == limits.max_redirects:
            detail = f"redirects more than {limits.max_redirects} times (collect.max_redirects)"
            return _end(trail, "broken", detail)
        try:
            url = url.join(location)
        except httpx.InvalidURL:
            return _end(trail, "broken", f"redirects to {location}, which is not a valid URL")
        trail.hops += 1
        trail.asking = str(url)
        if url.scheme not in ("http", "https"):
            return _end(trail, "broken", f"redirects to {url} (not http(s)): not followed")


async def _ask(hosts: _Hosts, url: httpx.URL, trail: _Trail) -> tuple[int, str | None]:
    """The status of ``url`` and its redirect target, if any: HEAD, and GET where HEAD is
    refused (405, 501, or any 4xx: some servers answer HEAD 403 or 404 and GET 200)."""
    status, location = await _request(hosts, "HEAD", url, trail)
    if status == 501 or 400 <= status < 500:
        status, location = await _request(hosts, "GET", url, trail)
    return status, location


async def _request(
    hosts: _Hosts, method: str, url: httpx.URL, trail: _Trail
) -> tuple[int, str | None]:
    """One request through the pinned transport of the URL's host, on that host's turn;
    only the headers are read."""
    where = origin(url)
    request = httpx.Request(method, url, headers={"User-Agent": USER_AGENT})
    async with hosts.turn(where):
        if where in hosts.down:
            raise HostDown(hosts.down[where])
        try:
            async with _spending(trail):
                response = await hosts.transport(where).handle_async_request(request)
                await response.aclose()  # the body, if any, is never read
        except httpx.ConnectError as exc:
            hosts.down[where] = f"could not connect ({_plain(exc)})"
            raise
        except (TimeoutError, httpx.TimeoutException):
            hosts.timeouts[where] = hosts.timeouts.get(where, 0) + 1
            if hosts.timeouts[where] >= TIMEOUTS_BEFORE_DOWN:
                hosts.down[where] = f"timed out {TIMEOUTS_BEFORE_DOWN} times"
            raise
    trail.answered, trail.status = str(url), response.status_code
    if response.status_code in REDIRECTS and "Location" in response.headers:
        return response.status_code, response.headers["Location"]
    return response.status_code, None


@asynccontextmanager
async def _spending(trail: _Trail) -> AsyncIterator[None]:
    """Time the link's requests against its budget: a link's requests together get
    link_timeout_seconds; waiting for a host's turn does not count."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(max(trail.budget, 0.0)):
            yield
    finally:
        trail.budget -= time.monotonic() - start


def _classify(trail: _Trail, status: int) -> LinkResult:
    if 200 <= status < 300:
        return _end(trail, "ok" if trail.hops == 0 else "redirected", "")
    where = f" at {trail.answered}" if trail.hops else ""
    if status >= 500:
        return _end(trail, "unreachable", f"HTTP {status}{where}")
    if status >= 400:
        return _end(trail, "broken", f"HTTP {status}{where}")
    return _end(trail, "broken", f"HTTP {status}{where}, with nowhere to go")


def _end(trail: _Trail, outcome: str, detail: str, *, answered: bool = True) -> LinkResult:
    """The link's result; ``answered=False`` when the last request got no answer."""
    status = trail.status if answered else None
    return LinkResult(trail.link, outcome, status, trail.answered, detail)


def _plain(exc: Exception) -> str:
    """An httpx error's own words, without the errno ("[Errno 111] Connection refused")."""
    return re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
