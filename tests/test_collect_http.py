"""Collecting over HTTP (faked with respx): conditional GET, dead sources, the exit status."""

from __future__ import annotations

import fcntl
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
import sqlalchemy as sa
import time_machine
from typer.testing import CliRunner

from digest.cli import app
from digest.collect import collect
from digest.errors import DigestError
from digest.store.tables import items
from tests.conftest import NOW

GOOD = "https://news.example.org/feed.xml"
BAD = "https://dead.example.org/feed.xml"
ETAG = '"w48-v1"'
LAST_MODIFIED = "Wed, 25 Nov 2026 21:45:00 GMT"
FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>News</title>
<item><title>Council approves two overdose prevention sites</title>
<link>https://news.example.org/ops-sites</link><guid>ops-sites</guid>
<pubDate>Tue, 24 Nov 2026 14:15:00 -0500</pubDate>
<description>By a vote of 9 to 4.</description></item>
<item><title>Naloxone heads to six library branches</title>
<link>https://news.example.org/naloxone</link><guid>naloxone</guid>
<pubDate>Wed, 25 Nov 2026 09:00:00 -0500</pubDate>
<description>Free kits, no questions asked.</description></item>
</channel></rss>"""
RSS_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}

TWO_FEEDS = f"""
[[sources.feeds]]
name = "news"
url = "{GOOD}"

[[sources.feeds]]
name = "dead"
url = "{BAD}"

[collect]
max_bytes = 4000
max_redirects = 2
"""


def count_items(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one()


def invoke_collect(project):
    with time_machine.travel(NOW, tick=False):
        return CliRunner().invoke(app, ["collect", "--config", str(project.config)])


def feed_response(*_args: object) -> httpx.Response:
    return httpx.Response(200, content=FEED, headers=RSS_HEADERS)


def test_second_collect_is_conditional_and_stores_no_duplicate(
    make_project, respx_mock: respx.MockRouter
) -> None:
    project = make_project(f'[[sources.feeds]]\nname = "news"\nurl = "{GOOD}"\n')
    validators = {**RSS_HEADERS, "ETag": ETAG, "Last-Modified": LAST_MODIFIED}
    route = respx_mock.get(GOOD).mock(
        side_effect=[
            httpx.Response(200, content=FEED, headers=validators),
            httpx.Response(200, content=FEED, headers=validators),  # a server ignoring them
            httpx.Response(304),
        ]
    )
    settings, engine = project.settings(), project.engine()

    (first,) = collect(settings, engine, NOW).outcomes
    assert first.added == 2
    assert "If-None-Match" not in route.calls[0].request.headers
    assert "If-Modified-Since" not in route.calls[0].request.headers

    (second,) = collect(settings, engine, NOW).outcomes
    sent = route.calls[1].request.headers
    assert (sent["If-None-Match"], sent["If-Modified-Since"]) == (ETAG, LAST_MODIFIED)
    assert (second.added, second.merged, second.not_modified) == (0, 0, False)

    (third,) = collect(settings, engine, NOW).outcomes
    assert route.calls[2].request.headers["If-None-Match"] == ETAG
    assert third.not_modified
    assert third.error is None
    assert count_items(engine) == 2


def test_not_modified_is_shown_on_the_command_line(
    make_project, respx_mock: respx.MockRouter
) -> None:
    project = make_project(f'[[sources.feeds]]\nname = "news"\nurl = "{GOOD}"\n')
    respx_mock.get(GOOD).mock(
        side_effect=[
            httpx.Response(200, content=FEED, headers={**RSS_HEADERS, "ETag": ETAG}),
            httpx.Response(304),
        ]
    )
    assert invoke_collect(project).exit_code == 0
    result = invoke_collect(project)
    assert result.exit_code == 0, result.output
    assert "feed 'news': not modified since the last collect" in result.output


def test_requests_say_who_is_asking(make_project, respx_mock: respx.MockRouter) -> None:
    project = make_project(f'[[sources.feeds]]\nname = "news"\nurl = "{GOOD}"\n')
    route = respx_mock.get(GOOD).mock(side_effect=feed_response)
    collect(project.settings(), project.engine(), NOW)
    assert route.calls.last.request.headers["User-Agent"].startswith("digest/")


def test_validators_of_a_response_that_failed_to_parse_are_not_reused(
    make_project, respx_mock: respx.MockRouter
) -> None:
    project = make_project(f'[[sources.feeds]]\nname = "news"\nurl = "{GOOD}"\n')
    broken = {"Content-Type": "text/html", "ETag": '"maintenance-page"'}
    route = respx_mock.get(GOOD).mock(
        side_effect=[
            httpx.Response(200, html="<html><body>Back soon</body></html>", headers=broken),
            feed_response(),
        ]
    )
    settings, engine = project.settings(), project.engine()
    assert collect(settings, engine, NOW).outcomes[0].error is not None
    # Otherwise a 304 could keep the real feed hidden behind the maintenance page.
    (second,) = collect(settings, engine, NOW).outcomes
    assert "If-None-Match" not in route.calls[1].request.headers
    assert second.added == 2


async def _endless_body() -> AsyncIterator[bytes]:
    for _ in range(100):
        yield b"<rss>" + b"x" * 995


DEAD_SOURCES = {
    "http-404": (lambda _r: httpx.Response(404, text="Not Found"), "HTTP 404"),
    "read-timeout": (httpx.ReadTimeout("read timed out"), "timed out"),
    "connect-timeout": (httpx.ConnectTimeout("connect timed out"), "timed out"),
    "html-page": (
        lambda _r: httpx.Response(
            200,
            html="<!doctype html><html><head><title>Our news</title></head>"
            "<body><h1>News</h1><p>We moved!</p></body></html>",
        ),
        "not a feed",
    ),
    "too-large-declared": (
        lambda _r: httpx.Response(200, content=b"<rss>" + b"x" * 5000, headers=RSS_HEADERS),
        "larger than 4000 bytes",
    ),
    "too-large-streamed": (
        lambda _r: httpx.Response(200, content=_endless_body()),
        "larger than 4000 bytes",
    ),
    "redirect-loop": (
        lambda _r: httpx.Response(302, headers={"Location": BAD}),
        "redirected more than 2 times",
    ),
}


@pytest.mark.parametrize("case", sorted(DEAD_SOURCES))
def test_a_dead_source_is_named_and_skipped_while_the_rest_is_collected(
    case: str, make_project, respx_mock: respx.MockRouter
) -> None:
    side_effect, reason = DEAD_SOURCES[case]
    project = make_project(TWO_FEEDS)
    respx_mock.get(GOOD).mock(side_effect=feed_response)
    respx_mock.get(BAD).mock(side_effect=side_effect)

    result = invoke_collect(project)

    assert result.exit_code == 0, result.output
    assert "feed 'news': 2 new" in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert any("sources.feeds[2]" in w and reason in w for w in warnings), result.output
    assert any("1 of 2 sources failed" in w for w in warnings), result.output
    assert "Traceback" not in result.output
    assert count_items(project.engine()) == 2


def test_when_every_source_fails_the_command_exits_1_with_one_error_line(
    make_project, respx_mock: respx.MockRouter
) -> None:
    project = make_project(TWO_FEEDS)
    respx_mock.get(GOOD).mock(side_effect=httpx.ConnectError("connection refused"))
    respx_mock.get(BAD).respond(404)

    result = invoke_collect(project)

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0]
    assert "all 2 sources failed" in errors[0]
    assert "Traceback" not in result.output
    assert any("sources.feeds[1]" in line for line in lines)
    assert any("sources.feeds[2]" in line and "404" in line for line in lines)
    assert count_items(project.engine()) == 0


def test_a_second_collect_on_the_same_folder_is_refused_while_one_runs(
    make_project, respx_mock: respx.MockRouter
) -> None:
    project = make_project(f'[[sources.feeds]]\nname = "news"\nurl = "{GOOD}"\n')
    route = respx_mock.get(GOOD).mock(side_effect=feed_response)
    settings, engine = project.settings(), project.engine()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    with (settings.var_dir / "collect.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DigestError, match="another 'digest collect' is running"):
            collect(settings, engine, NOW)
    assert not route.called
    assert collect(settings, engine, NOW).added == 2  # and it runs once the first is done
