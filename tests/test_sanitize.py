"""Small rules that decide what readers see: URLs, titles, text, event times."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from digest.collect.calendars import parse_calendar
from digest.collect.sanitize import clean_html, cut_at_word, html_to_text
from digest.collect.urls import clean_url, similar_titles, title_key, url_key
from digest.models import Event
from digest.render.templates import eventtime

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    "url",
    [
        "https://WWW.Example.org/story/?utm_source=rss&utm_medium=feed#comments",
        "http://example.org/story",
        "https://example.org:443/story/?fbclid=abc",
    ],
)
def test_tracking_fragments_host_case_and_slashes_do_not_make_a_new_story(url: str) -> None:
    cleaned = clean_url(url)
    assert cleaned is not None and "utm_" not in cleaned and "#" not in cleaned
    assert url_key(cleaned) == "example.org/story"


def test_real_query_parameters_are_kept() -> None:
    assert clean_url("https://example.org/a?id=3&utm_campaign=x") == "https://example.org/a?id=3"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://x.org/", "/rel"])
def test_only_absolute_http_links_survive(url: str) -> None:
    assert clean_url(url) is None


def test_near_identical_titles_match_but_numbered_ones_do_not() -> None:
    a = title_key("Council approves two overdose prevention sites")
    assert similar_titles(a, title_key("Council approves two overdose-prevention sites!"))
    assert not similar_titles(title_key("Court watch: day 3"), title_key("Court watch: day 4"))


def test_sanitiser_removes_everything_active() -> None:
    dirty = (
        '<p onclick="x()">Hi<script>alert(1)</script><iframe src="//e.org"></iframe>'
        '<a href="javascript:alert(2)">a</a><a href="data:text/html,x">b</a>'
        '<form><input name="q"></form><img src=x onerror="alert(3)"><style>p{}</style></p>'
    )
    clean = clean_html(dirty)
    for bad in (
        "<script",
        "onclick",
        "onerror",
        "<iframe",
        "javascript:",
        "data:",
        "<form",
        "<input",
        "<style",
        "<img",
    ):
        assert bad not in clean


def test_text_keeps_paragraphs_and_lists_and_numbers_links() -> None:
    links: list[str] = []

    def number(url: str) -> int:
        links.append(url)
        return len(links)

    text = html_to_text(
        '<p>One &amp; <a href="https://e.org/x">two</a></p><ul><li>a</li><li>b</li></ul>', number
    )
    assert text == "One & two [1]\n\n- a\n- b"
    assert links == ["https://e.org/x"]


def test_summaries_are_cut_at_a_word_boundary() -> None:
    cut = cut_at_word("alpha beta gamma delta epsilon", 20)
    assert cut == "alpha beta gamma…" and len(cut) <= 20


def test_an_event_without_an_end_shows_only_its_start() -> None:
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART;TZID=America/New_York:20261203T130000\r\n"
        "SUMMARY:Rally\r\nLOCATION:<b onclick=x>City Hall</b>\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    parsed = parse_calendar(
        ics.encode(),
        source="c",
        start=datetime(2026, 12, 1, tzinfo=NY),
        end=datetime(2026, 12, 9, tzinfo=NY),
        zone=NY,
        description_chars=200,
    )
    [event] = parsed.events
    assert event.end is None
    assert eventtime(event) == "Thursday 3 December, 1 pm"
    assert event.location == "City Hall"


def test_event_times_read_as_words() -> None:
    start = datetime(2026, 12, 1, 18, 30, tzinfo=NY)
    event = Event("k", "c", "T", start, start.replace(hour=20, minute=30), all_day=False)
    assert eventtime(event) == "Tuesday 1 December, 6:30 pm to 8:30 pm"
    all_day = Event("k", "c", "T", start.replace(hour=0, minute=0), None, all_day=True)
    assert eventtime(all_day) == "Tuesday 1 December, all day"


def test_a_json_feed_with_a_byte_order_mark_is_still_a_json_feed() -> None:
    from digest.collect.feeds import parse_feed

    body = (
        b'\xef\xbb\xbf{"version": "https://jsonfeed.org/version/1.1", "items": ['
        b'{"id": "1", "url": "https://e.org/a", "title": "A", "content_text": "Hi"}]}'
    )
    parsed = parse_feed(
        body,
        source="j",
        section="news",
        url="https://e.org/feed.json",
        now=datetime(2026, 11, 26, tzinfo=NY),
        summary_chars=100,
    )
    assert [i.title for i in parsed.items] == ["A"]


def test_lone_surrogates_and_controls_never_reach_the_text() -> None:
    assert html_to_text("<p>a\ud800b\x01c\uffff</p>") == "abc"


def test_sanitiser_output_is_exactly_the_harmless_markup() -> None:
    """Exact output, not a list of things absent: an attribute let through shows up."""
    dirty = (
        '<p style="color:#fff;background:url(https://t.example/p.gif)" class="x" id="y">'
        'Hi <b style="font-size:1px">there</b> <a href="https://e.org/" style="display:none" '
        'onclick="x()" title="E">link</a><style>p{color:red}</style></p>'
    )
    assert clean_html(dirty) == (
        '<p>Hi <b>there</b> <a href="https://e.org/" title="E" rel="noopener noreferrer">'
        "link</a></p>"
    )


# What a dropped frame, script or fallback held never shows: not as text, not as markup.
FRAMED = (
    '<p>Watch <iframe src="https://v.example/live"><a href="https://v.example/">Your browser '
    "cannot show frames</a> <b>fallback</b></iframe>the vote.<noscript><p>Turn on "
    "JavaScript</p></noscript><script>track()</script><object>plugin</object></p>"
)


def _rss_item(html: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>Vote</title><link>https://e.org/vote</link><guid>vote</guid>"
        f"<description><![CDATA[{html}]]></description></item></channel></rss>"
    ).encode()


def _json_item(html: str) -> bytes:
    import json

    item = {"id": "vote", "url": "https://e.org/vote", "title": "Vote", "content_html": html}
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]}).encode()


@pytest.mark.parametrize("shape", [_rss_item, _json_item], ids=["rss", "json-feed"])
def test_a_dropped_frame_takes_what_it_held_with_it_in_feeds(shape) -> None:
    from digest.collect.feeds import parse_feed

    (item,) = parse_feed(
        shape(FRAMED),
        source="f",
        section="news",
        url="https://e.org/feed",
        now=datetime(2026, 11, 26, tzinfo=NY),
        summary_chars=200,
    ).items
    assert item.summary == "Watch the vote."
    assert item.body_html == "<p>Watch the vote.</p>"


def test_a_dropped_frame_takes_what_it_held_with_it_in_a_calendar_description() -> None:
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTART;TZID=America/New_York:20261203T130000\r\nSUMMARY:Rally\r\n"
        f"DESCRIPTION:{FRAMED.replace(',', chr(92) + ',')}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (event,) = parse_calendar(
        ics.encode(),
        source="c",
        start=datetime(2026, 12, 1, tzinfo=NY),
        end=datetime(2026, 12, 9, tzinfo=NY),
        zone=NY,
        description_chars=200,
    ).events
    assert event.description == "Watch the vote."


def test_the_tags_dropped_whole_are_none_of_the_allowed_ones() -> None:
    from digest.collect.sanitize import ALLOWED_TAGS, DROPPED_WITH_CONTENT

    assert not ALLOWED_TAGS & DROPPED_WITH_CONTENT
    assert clean_html("<p>a<template><p>b</p></template><svg><text>c</text></svg>d</p>") == (
        "<p>ad</p>"
    )
