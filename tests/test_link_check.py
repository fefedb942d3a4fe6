"""The link check against real local servers: each answer classified, a few requests at a
time per host, the cache, the address rules on every hop; and which links an edition has."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from digest.checks.edition_links import EMAIL, FoundLink, links_of
from digest.checks.links import SKIPPED, LinkResult, check_links, check_links_cached
from digest.collect.fetch import USER_AGENT
from digest.config import Settings
from digest.models import Edition, Event, Item, RenderedEmail, Section
from tests.conftest import Project
from tests.link_server import LinkServer, Route, moved

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TIMEOUT = 0.5
MakeProject = Callable[[str], Project]


def checks_toml(*allowed: LinkServer | str, timeout: float = TIMEOUT, more: str = "") -> str:
    """A [checks] table; each of ``allowed`` (a server, or host:port) may be private."""
    origins = ", ".join(f'"{a if isinstance(a, str) else a.origin}"' for a in allowed)
    return f"""
[collect]
max_redirects = 3

[checks]
links = "warn"
spam = "off"
link_timeout_seconds = {timeout}
allow_private_links = [{origins}]
{more}
"""


def check(urls: list[str], settings: Settings) -> dict[str, LinkResult]:
    results = asyncio.run(check_links(urls, settings))
    assert [r.url for r in results] == list(dict.fromkeys(urls))
    return {r.url: r for r in results}


@pytest.fixture
def server() -> Iterator[LinkServer]:
    with LinkServer() as running:
        yield running


@pytest.fixture
def outsider() -> Iterator[LinkServer]:
    """A server on loopback that no setting allows: the check must never reach it."""
    with LinkServer() as running:
        running.routes["/inside"] = Route(200)
        yield running


@pytest.fixture(autouse=True)
def no_real_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name under .invalid fails to resolve as a resolver would say, without asking one."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- each answer ------------------------------------------------------------------------


def test_each_answer_is_classified(server: LinkServer, make_project: MakeProject) -> None:
    server.routes.update(
        {
            "/ok": Route(200),
            "/moved": moved("/ok"),
            "/gone": Route(404),
            "/error": Route(500),
            "/slow": Route(200, delay=2.0),
            "/no-head": Route(200, head_status=405, stall_body=True),
            "/head-403": Route(200, head_status=403),
            "/moved-to-gone": moved("/gone", 302),
        }
    )
    settings = make_project(checks_toml(server)).settings()
    started = time.monotonic()
    got = check([server.url(p) for p in server.routes], settings)
    elapsed = time.monotonic() - started

    def seen(path: str) -> tuple[str, int | None, str, str]:
        r = got[server.url(path)]
        return r.outcome, r.status, r.final_url, r.detail

    assert seen("/ok") == ("ok", 200, server.url("/ok"), "")
    assert seen("/moved") == ("redirected", 200, server.url("/ok"), "")
    assert seen("/gone") == ("broken", 404, server.url("/gone"), "HTTP 404")
    assert seen("/error") == ("unreachable", 500, server.url("/error"), "HTTP 500")
    assert seen("/slow") == ("unreachable", None, server.url("/slow"), "timed out after 0.5 s")
    # HEAD refused, GET answers: ok, and its body (held back) was never waited for.
    assert seen("/no-head") == ("ok", 200, server.url("/no-head"), "")
    assert seen("/head-403") == ("ok", 200, server.url("/head-403"), "")
    assert seen("/moved-to-gone") == (
        "broken",
        404,
        server.url("/gone"),
        f"HTTP 404 at {server.url('/gone')}",
    )
    assert elapsed < 1.5, f"the slow link held the check for {elapsed:.2f} s"
    # HEAD first everywhere; GET only where HEAD was refused with a 4xx.
    assert server.hits[("HEAD", "/ok")] == 2 and server.hits[("GET", "/ok")] == 0
    assert server.hits[("GET", "/no-head")] == 1 and server.hits[("GET", "/gone")] == 2
    assert server.hits[("GET", "/error")] == 0
    assert server.user_agents == {USER_AGENT}


def test_redirects_past_the_limit_or_off_the_web_are_broken(
    server: LinkServer, make_project: MakeProject
) -> None:
    server.routes.update(
        {
            "/loop": moved("/loop", 302),
            "/ftp": moved("ftp://files.example.org/a.pdf"),
            "/three": moved("/two"),
            "/two": moved("/one"),
            "/one": moved("/end"),
            "/end": Route(200),
        }
    )
    settings = make_project(checks_toml(server)).settings()  # max_redirects = 3
    got = check([server.url("/loop"), server.url("/ftp"), server.url("/three")], settings)
    loop = got[server.url("/loop")]
    assert (loop.outcome, loop.detail) == (
        "broken",
        "redirects more than 3 times (collect.max_redirects)",
    )
    assert server.hits[("HEAD", "/loop")] == 4
    ftp = got[server.url("/ftp")]
    assert (ftp.outcome, ftp.status, ftp.detail) == (
        "broken",
        301,
        "redirects to ftp://files.example.org/a.pdf (not http(s)): not followed",
    )
    three = got[server.url("/three")]  # exactly three redirects is still fine
    assert (three.outcome, three.final_url) == ("redirected", server.url("/end"))


def test_a_links_requests_share_its_timeout(server: LinkServer, make_project: MakeProject) -> None:
    """Each hop answers within the timeout; all of them together do not."""
    server.routes.update(
        {
            "/first": Route(301, {"Location": "/second"}, delay=0.3),
            "/second": Route(200, delay=0.3),
        }
    )
    settings = make_project(checks_toml(server)).settings()
    got = check([server.url("/first")], settings)[server.url("/first")]
    assert (got.outcome, got.detail) == ("unreachable", "timed out after 0.5 s")
    assert got.final_url == server.url("/first")  # the last address that answered


# --- the address rules ------------------------------------------------------------------


def test_a_redirect_inside_is_reported_and_not_followed(
    server: LinkServer, outsider: LinkServer, make_project: MakeProject
) -> None:
    inside = outsider.url("/inside")
    server.routes["/jump"] = moved(inside, 302)
    settings = make_project(checks_toml(server)).settings()
    got = check([server.url("/jump")], settings)[server.url("/jump")]
    assert got.outcome == "broken"
    assert got.detail == f"redirects to {inside} (a loopback address): not followed"
    assert (got.status, got.final_url) == (302, server.url("/jump"))
    assert outsider.requests == 0
    assert server.hits[("HEAD", "/jump")] == 1


def test_a_link_straight_inside_is_refused(outsider: LinkServer, make_project: MakeProject) -> None:
    inside = outsider.url("/inside")
    settings = make_project(checks_toml()).settings()
    got = check([inside, "http://10.1.2.3/intranet"], settings)
    assert (got[inside].outcome, got[inside].status) == ("broken", None)
    assert got[inside].detail == f"{inside} (a loopback address): not checked"
    private = got["http://10.1.2.3/intranet"]
    assert private.outcome == "broken"
    assert private.detail == "http://10.1.2.3/intranet (a private address): not checked"
    assert outsider.requests == 0


def test_a_name_that_does_not_resolve_or_a_closed_port_is_unreachable(
    make_project: MakeProject,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = make_project(checks_toml(f"127.0.0.1:{closed}")).settings()
    no_such, refused = "http://no-such-host.invalid/", f"http://127.0.0.1:{closed}/"
    got = check([no_such, refused], settings)
    assert got[no_such].outcome == "unreachable"
    assert got[no_such].detail == (
        "could not connect (the host name no-such-host.invalid does not resolve)"
    )
    assert got[refused].outcome == "unreachable"
    assert got[refused].detail.startswith("could not connect (")
    assert got[refused].status is None


def test_a_host_that_cannot_be_reached_is_not_asked_for_each_link(
    server: LinkServer, make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    resolve = socket.getaddrinfo  # the autouse fake: .invalid never resolves

    def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    for i in range(8):
        server.routes[f"/slow{i}"] = Route(200, delay=TIMEOUT * 2)
    settings = make_project(checks_toml(server)).settings()
    gone = [f"http://gone.invalid/{i}" for i in range(8)]
    slow = [server.url(f"/slow{i}") for i in range(8)]
    got = check(gone + slow, settings)
    assert {got[u].outcome for u in gone + slow} == {"unreachable"}
    assert asked.count("gone.invalid") <= 2  # the two first turns; the rest were not asked
    assert (
        sum(
            got[u].detail.startswith(
                "could not connect (the host name gone.invalid does not resolve) for another "
                "link to this host: not asked again"
            )
            for u in gone
        )
        >= 6
    )
    assert server.requests <= 3  # two timeouts, and the host is given up
    assert (
        sum(
            got[u].detail == "timed out 2 times for another link to this host: not asked again"
            for u in slow
        )
        >= 5
    )


def test_what_is_not_an_http_link_is_not_fetched(make_project: MakeProject) -> None:
    settings = make_project(checks_toml()).settings()
    got = check(["mailto:news@coalition.example.org", "http://"], settings)
    assert got["mailto:news@coalition.example.org"].outcome == "broken"
    assert got["http://"].outcome == "broken"


# --- many links, the cache --------------------------------------------------------------


def test_sixty_links_on_ten_hosts_two_at_a_time_then_cached(make_project: MakeProject) -> None:
    servers = [LinkServer(latency=0.2) for _ in range(10)]
    for s in servers:
        s.__enter__()
    try:
        for s in servers:
            s.routes.update({f"/p{i}": Route(200) for i in range(6)})
        urls = [s.url(f"/p{i}") for i in range(6) for s in servers]
        # A roomy timeout: this test is about speed and turns, not timeouts (the suite
        # runs on two busy workers).
        project = make_project(checks_toml(*servers, timeout=4.0))
        settings, engine = project.settings(), project.engine()

        started = time.monotonic()
        first = check_links_cached(engine, urls, settings, NOW)
        elapsed = time.monotonic() - started
        print(f"60 links on 10 hosts, 200 ms a request: {elapsed:.2f} s")
        assert list(first) == urls
        assert {r.outcome for r in first.values()} == {"ok"}, [
            r for r in first.values() if r.outcome != "ok"
        ][:3]
        assert not any(r.cached for r in first.values())
        assert elapsed < 5.0
        assert [s.peak for s in servers] == [2] * 10  # two at a time, and never more
        assert [s.requests for s in servers] == [6] * 10

        later = check_links_cached(engine, urls, settings, NOW + timedelta(hours=23))
        assert all(r.cached and r.outcome == "ok" for r in later.values())
        assert [s.requests for s in servers] == [6] * 10

        next_day = check_links_cached(engine, urls, settings, NOW + timedelta(hours=25))
        assert not any(r.cached for r in next_day.values())
        assert [s.requests for s in servers] == [12] * 10
    finally:
        for s in servers:
            s.__exit__(None, None, None)


def test_the_cache_keeps_what_a_link_answered(
    server: LinkServer, make_project: MakeProject
) -> None:
    server.routes.update({"/moved": moved("/ok"), "/ok": Route(200), "/gone": Route(404)})
    project = make_project(checks_toml(server, more="link_cache_hours = 2"))
    settings, engine = project.settings(), project.engine()
    urls = [server.url("/moved"), server.url("/gone")]
    first = check_links_cached(engine, urls, settings, NOW)
    again = check_links_cached(engine, urls, settings, NOW + timedelta(hours=1))
    for url in urls:
        assert again[url] == replace(first[url], cached=True)
    assert again[server.url("/moved")].final_url == server.url("/ok")
    before = server.requests
    check_links_cached(engine, urls, settings, NOW + timedelta(hours=3))  # past 2 hours
    assert server.requests > before


def test_past_max_links_the_rest_is_skipped_and_not_remembered(
    server: LinkServer, make_project: MakeProject
) -> None:
    server.routes.update({f"/p{i}": Route(200) for i in range(3)})
    project = make_project(checks_toml(server, more="max_links = 2"))
    settings, engine = project.settings(), project.engine()
    urls = [server.url(f"/p{i}") for i in range(3)]
    got = check_links_cached(engine, [*urls, urls[0]], settings, NOW)
    assert list(got) == urls
    assert [r.outcome for r in got.values()] == ["ok", "ok", "skipped"]
    assert got[urls[2]].detail == SKIPPED
    assert server.hits[("HEAD", "/p2")] == 0
    # Next time the two are cached, so the third fits in max_links and is checked.
    again = check_links_cached(engine, urls, settings, NOW + timedelta(minutes=5))
    assert [(r.outcome, r.cached) for r in again.values()] == [
        ("ok", True),
        ("ok", True),
        ("ok", False),
    ]


def test_the_cached_check_runs_from_inside_an_event_loop(
    server: LinkServer, make_project: MakeProject
) -> None:
    server.routes["/ok"] = Route(200)
    project = make_project(checks_toml(server))
    settings, engine = project.settings(), project.engine()

    async def from_a_coroutine() -> dict[str, LinkResult]:
        return check_links_cached(engine, [server.url("/ok")], settings, NOW)

    assert asyncio.run(from_a_coroutine())[server.url("/ok")].outcome == "ok"


# --- which links an edition has ---------------------------------------------------------

BASE = "https://digest.coalition.example.org"


def _item(title: str, url: str | None, summary: str = "", body: str = "") -> Item:
    return Item(
        key=title, source="news", section="news", title=title, url=url, summary=summary,
        body_html=body, published=NOW, first_seen=NOW,
    )  # fmt: skip


def _event(title: str, url: str | None, description: str = "", full: str = "") -> Event:
    return Event(
        key=title, source="events", title=title, start=NOW, end=None, all_day=False, url=url,
        description=description, description_full=full,
    )  # fmt: skip


def _edition(note: Item | None, *sections: Section) -> Edition:
    return Edition(
        id="2026-W48", subject="s", preheader="p", since=NOW, cutoff=NOW, editor_note=note,
        sections=sections, archive_url=f"{BASE}/archive/2026-W48",
    )  # fmt: skip


def _example() -> Edition:
    note = _item("A word", None, body='<p><a href="https://note.example.org/a?x=1&amp;y=2">')
    court = _item(
        "Court rules",
        "https://news.example.org/court",
        summary="Details at https://court.example.org/ruling.",
        body='<a href="https://court.example.org/ruling">ruling</a>'
        '<a href="mailto:press@example.org">press</a><a href="/relative">x</a>',
    )
    later = _item("Later story", "https://news.example.org/later")
    vigil = _event("Vigil", "https://events.example.org/vigil", "Sign up: https://su.example.org")
    rally = _event("Rally", None, full="Bring water. Details (https://rally.example.org/info)")
    return _edition(
        note,
        Section("news", "News", items=(court,), more_items=(later,)),
        Section("events", "Events", events=(vigil,), more_events=(rally,)),
    )


def test_links_of_an_edition_in_order_with_where_they_sit() -> None:
    email = RenderedEmail(
        subject="s",
        html=(
            '<a href="https://news.example.org/court">Court rules</a>'
            f'<a href="{BASE}/u/-unsubscribe_token-">Unsubscribe</a>'
            f'<a href="{BASE}">archive</a>'
            '<a href="https://coalition.example.org">Test Coalition</a>'
            '<a href="-preferences_url-">Preferences</a><a href="tel:+15551234">call</a>'
        ),
        text=(
            "Court rules\nhttps://news.example.org/court\n\n"
            f"Unsubscribe: {BASE}/u/-unsubscribe_token-\n"
            "Donate: <https://give.example.org/now>.\n"
        ),
    )
    found = links_of(_example(), email, BASE + "/")
    assert found == [
        FoundLink("https://note.example.org/a?x=1&y=2", "Editor's note: A word"),
        FoundLink("https://news.example.org/court", "Court rules"),
        FoundLink("https://court.example.org/ruling", "Court rules"),
        FoundLink("https://news.example.org/later", "Later story"),
        FoundLink("https://events.example.org/vigil", "Vigil"),
        FoundLink("https://su.example.org", "Vigil"),
        FoundLink("https://rally.example.org/info", "Rally"),
        FoundLink("https://coalition.example.org", EMAIL),
        FoundLink("https://give.example.org/now", EMAIL),
    ]


def test_the_same_url_in_two_places_is_found_in_each() -> None:
    one = _item("One", "https://same.example.org/")
    two = _item("Two", None, body='<a href="https://same.example.org/">it</a>')
    edition = _edition(None, Section("news", "News", items=(one, two)))
    email = RenderedEmail("s", '<a href="https://same.example.org/">x</a>', "")
    assert links_of(edition, email, BASE) == [
        FoundLink("https://same.example.org/", "One"),
        FoundLink("https://same.example.org/", "Two"),
    ]
