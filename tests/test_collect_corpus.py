"""The shared third-party corpus through collection: every feed and every calendar.

Feeds go through the real collect (local files) and build; calendars through
``parse_calendar`` with expectations read off each file by hand.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from digest.build import build
from digest.collect import collect
from digest.collect.calendars import parse_calendar
from digest.errors import SourceError
from digest.store.tables import items
from tests.conftest import CORPUS, EXAMPLES, NOW

UTC = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
VIENNA = ZoneInfo("Europe/Vienna")

# An executable bit of markup in the stored text or in the email: a script or frame
# tag, an on...= attribute inside a tag, or a javascript: URL.
UNSAFE_STORED = re.compile(r"<\s*(script|iframe)|\son[a-z]+\s*=|javascript:", re.IGNORECASE)
UNSAFE_HTML = re.compile(r"<\s*script|<[^>]*\son[a-z]+\s*=|javascript:", re.IGNORECASE)


def _corpus_files(folder: str, pattern: str) -> list[object]:
    root = CORPUS / folder
    if not root.is_dir():  # the `corpus` fixture then skips with the reason
        return [pytest.param("", id="corpus-missing")]
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob(pattern) if p.is_file())
    return [pytest.param(p, id=p) for p in paths]


# --- feeds ------------------------------------------------------------------------

FEED_FILES = [p for p in _corpus_files("feeds", "*") if not str(p.values[0]).endswith(".md")]
# Nothing in them can be salvaged: the source is reported, naming its config key.
REPORTED = {
    "illformed/aaa_illformed.xml",
    "illformed/rss_empty_document.xml",
    "illformed/undeclared_namespace.xml",
}
# Malformed XML whose entries feedparser still recovers: stored, with a warning.
SALVAGED_WITH_WARNING = {
    "illformed/rdf_channel_empty_textinput.xml",
    "illformed/rss_incomplete_cdata.xml",
    "illformed/rss_item_link_corrupted_ampersands.xml",
}
# Valid documents with other than one entry (every other file has exactly one).
ITEM_COUNTS = {
    "json/example.json": 2,
    "illformed/always_strip_doctype.xml": 0,
    "illformed/chardet/big5.xml": 0,
    "illformed/http_high_bit_date.xml": 0,
    "wellformed/atom10/feed_title.xml": 0,
    "wellformed/lang/channel_language.xml": 0,
    "wellformed/rss/channel_title.xml": 0,
    "wellformed/rss/channel_title_apos.xml": 0,
    "wellformed/rss/rss_version_090.xml": 0,
}


def _collect_one_feed(make_project, path: Path):
    """collect() over a project whose only source is ``path``; (outcome, stored rows, project)."""
    project = make_project(
        f"""
        [[sources.feeds]]
        name = "corpus-feed"
        url = {json.dumps(str(path))}
        section = "news"

        [edition]
        window_days = 36500
        """
    )
    engine = project.engine()
    (outcome,) = collect(project.settings(), engine, NOW).outcomes
    with engine.connect() as conn:
        rows = conn.execute(sa.select(items)).mappings().all()
    return outcome, rows, project


@pytest.mark.parametrize("name", FEED_FILES)
def test_every_corpus_feed_is_salvaged_or_reported_and_builds_a_safe_email(
    name: str, corpus: Path, make_project, tmp_path: Path
) -> None:
    outcome, rows, project = _collect_one_feed(make_project, corpus / "feeds" / name)

    if name in REPORTED:
        assert outcome.error is not None
        assert "feed 'corpus-feed'" in outcome.error
        assert "sources.feeds[1]" in outcome.error
        assert rows == []
    else:
        assert outcome.error is None, outcome.error
        assert len(rows) == ITEM_COUNTS.get(name, 1)
        assert outcome.added == len(rows)
        malformed = [w for w in outcome.warnings if "malformed" in w]
        assert bool(malformed) == (name in SALVAGED_WITH_WARNING), outcome.warnings
    for row in rows:
        for column in ("title", "summary", "body_html", "author", "url"):
            assert not UNSAFE_STORED.search(row[column] or ""), (column, row[column])

    out = tmp_path / "out"
    settings, engine = project.settings(), project.engine()
    build(settings, engine, week=None, out=out, force=True, now=NOW)
    html = (out / "email.html").read_text(encoding="utf-8")
    assert not UNSAFE_HTML.search(html), UNSAFE_HTML.search(html)
    for row in rows:  # what was salvaged reaches the reader
        escaped = row["title"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert escaped in html


@pytest.mark.parametrize(
    ("name", "title", "summary"),
    [
        # What a dropped frame held goes with it (issue 12): only the text around it stays.
        ("entry_content_iframe.xml", "safe", "safe"),
        ("entry_content_onclick.xml", "(untitled)", ""),
        ("entry_content_script.xml", "safe description", "safe description"),
        ("entry_summary_script_cdata.xml", "safe description", "safe description"),
        ("entry_title_script.xml", "safe description", ""),
    ],
)
def test_sanitize_corpus_keeps_the_text_and_drops_the_active_content(
    name: str, title: str, summary: str, corpus: Path, make_project
) -> None:
    _, rows, _ = _collect_one_feed(make_project, corpus / "feeds" / "wellformed/sanitize" / name)
    (row,) = rows
    assert (row["title"], row["summary"]) == (title, summary)
    stored = " ".join([row["title"], row["summary"], row["body_html"]]).lower()
    for active in ("<script", "<iframe", "onclick", "location.href", "<img"):
        assert active not in stored


def test_json_feed_gives_both_items_with_their_titles_links_and_no_script(
    corpus: Path, make_project
) -> None:
    _, rows, _ = _collect_one_feed(make_project, corpus / "feeds" / "json/example.json")
    by_title = {row["title"]: row for row in rows}
    # Item "1" has no title: it is named by the start of its text.
    assert set(by_title) == {"post 2", "Hello, world!"}
    assert by_title["post 2"]["url"] == "https://example.org/second-item"
    assert by_title["post 2"]["summary"] == "This is a second item."
    hello = by_title["Hello, world!"]
    assert hello["url"] == "https://example.org/initial-post"
    assert hello["author"] == "you"
    assert hello["body_html"] == "<p>Hello, world!</p>"


def test_a_hostile_json_feed_cannot_put_active_content_in_the_email(
    make_project, tmp_path: Path
) -> None:
    # JSON Feed bypasses feedparser's own sanitiser: our allow-list is all there is.
    hostile = (
        '<p>Read <a href="javascript:alert(1)">this</a> <a href=" JaVaScRiPt:alert(2)">that</a> '
        '<span onclick="steal()">and</span> <img src="x" onerror="alert(3)">'
        '<svg onload=alert(4)></svg><iframe src="https://evil.example/"></iframe>'
        "<script>alert(5)</script><style>p{}</style>"
        '<a href="https://example.org/ok" onmouseover="alert(6)">more</a></p>'
    )
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {
                "id": "x1",
                "title": "<img src=x onerror=alert(7)>Budget <b>news</b>",
                "url": "javascript:alert(8)",
                "content_html": hostile,
            }
        ],
    }
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(feed), encoding="utf-8")
    _, (row,), project = _collect_one_feed(make_project, path)
    assert (row["title"], row["url"]) == ("Budget news", None)
    assert row["summary"] == "Read this that and more"
    for column in ("title", "summary", "body_html"):
        assert not UNSAFE_STORED.search(row[column]), row[column]
    assert 'href="https://example.org/ok"' in row["body_html"]

    build(
        project.settings(), project.engine(), week=None, out=tmp_path / "out", force=True, now=NOW
    )
    html = (tmp_path / "out" / "email.html").read_text(encoding="utf-8")
    assert "Budget news" in html
    assert not UNSAFE_HTML.search(html), UNSAFE_HTML.search(html)


# --- calendars ----------------------------------------------------------------------


def _parse(name: str, zone: ZoneInfo, start: date, end: date):
    return parse_calendar(
        (CORPUS / "ics" / name).read_bytes(),
        source="cal",
        start=datetime.combine(start, datetime.min.time(), tzinfo=zone),
        end=datetime.combine(end, datetime.min.time(), tzinfo=zone),
        zone=zone,
        description_chars=300,
    )


def _shown(events) -> list[tuple[str, str]]:
    """Each occurrence as a reader sees it: title and local wall-clock start (date if all day)."""
    fmt = {True: "%Y-%m-%d", False: "%Y-%m-%d %H:%M"}
    return [(e.title, e.start.strftime(fmt[e.all_day])) for e in events]


def _series(title: str, first: date, days: list[int], at: str = "") -> list[tuple[str, str]]:
    return [(title, f"{first + timedelta(days=d):%Y-%m-%d}{' ' + at if at else ''}") for d in days]


# file -> (zone, window start, window end, expected occurrences, broken events skipped)
CALENDARS = {
    "icalendar/calendars/america_new_york.ics": (
        NY, date(2014, 8, 1), date(2014, 9, 1),
        [("an event with a custom tz name", "2014-08-29 08:00")], 0,
    ),
    "icalendar/calendars/broken_ical.ics": (UTC, date(2014, 4, 1), date(2014, 5, 1), [], 1),
    "icalendar/calendars/calendar_with_unicode.ics": (
        UTC, date(2000, 1, 1), date(2030, 1, 1), [], 0,
    ),
    "icalendar/calendars/example.ics": (
        UTC, date(2021, 12, 1), date(2022, 12, 31),
        [("New Year's Day", "2022-01-01"), ("Orthodox Christmas", "2022-01-07"),
         ("International Women's Day", "2022-03-08")], 0,
    ),
    "icalendar/calendars/invalid_duration.ics": (
        UTC, date(2023, 12, 1), date(2024, 2, 1), [], 1,
    ),
    "icalendar/calendars/issue_127_categories_with_commas.ics": (
        UTC, date(2014, 2, 1), date(2014, 3, 1),
        [("Test Event with Categories Containing Commas", "2014-02-04 14:00")], 0,
    ),
    # The VEVENTs with only RECURRENCE-ID or RDATE (no DTSTART) are the broken two.
    "icalendar/calendars/issue_722_missing_timezones.ics": (
        BERLIN, date(2014, 1, 1), date(2025, 1, 1),
        [("an event with a custom tz name", "2014-08-29 14:00"),
         ("an event with a custom tz name", "2024-09-13 12:00")], 2,
    ),
    "icalendar/calendars/multiple_timezones.ics": (
        NY, date(2021, 3, 1), date(2021, 4, 1), [], 3,
    ),
    "icalendar/calendars/parsing_error.ics": (
        UTC, date(2008, 3, 1), date(2008, 4, 1),
        _series("(untitled event)", date(2008, 3, 3), [d for d in range(21) if d != 8]), 1,
    ),
    "icalendar/calendars/timezoned.ics": (
        VIENNA, date(2012, 2, 1), date(2012, 3, 1), [("artsprint 2012", "2012-02-13 10:00")], 0,
    ),
    "icalendar/events/event_with_recurrence.ics": (
        UTC, date(1996, 3, 1), date(1996, 8, 1),
        _series("A recurring event with exdates", date(1996, 4, 1),
                [d for d in range(100) if d not in (1, 2, 3)], "01:00"), 0,
    ),
    "icalendar/events/event_with_recurrence_exdates_on_different_lines.ics": (
        VIENNA, date(2012, 3, 1), date(2012, 8, 1),
        _series("A Recurring event with multiple exdates, one per line.", date(2012, 3, 27),
                [0, 28, 42, 49, 56, 70, 77, 84, 91, 98], "10:00"), 0,
    ),
    "icalendar/events/issue_355_url_escaping.ics": (
        BERLIN, date(2022, 8, 1), date(2022, 9, 1), [("test", "2022-08-22 12:00")], 0,
    ),
    "icalendar/events/issue_53_description_parsed_properly.ics": (
        NY, date(2012, 7, 1), date(2012, 8, 1), [("DevOps DC Meetup", "2012-07-12 18:30")], 0,
    ),
    "recurring-ical-events/one_event.ics": (
        BERLIN, date(2019, 3, 1), date(2019, 4, 1), [("test1", "2019-03-04 08:00")], 0,
    ),
    "recurring-ical-events/event_10_times.ics": (
        BERLIN, date(2020, 1, 1), date(2020, 3, 1),
        _series("event 10 times", date(2020, 1, 13), list(range(10)), "07:45"), 0,
    ),
    # Weekly from 4 March 2019, COUNT=8; the EXDATE removes 11 March; DST starts 31 March.
    "recurring-ical-events/each_week_but_one_deleted.ics": (
        BERLIN, date(2019, 3, 1), date(2019, 5, 1),
        _series("test6", date(2019, 3, 4), [0, 14, 21, 28, 35, 42, 49], "00:30"), 0,
    ),
    "recurring-ical-events/issue_18_cancel_status.ics": (
        BERLIN, date(2020, 1, 1), date(2020, 3, 1),
        [("one is cancelled", "2020-01-28 22:00"), ("one is cancelled", "2020-01-30 22:00")], 0,
    ),
    "recurring-ical-events/recurring_events_moved.ics": (
        BERLIN, date(2019, 3, 1), date(2019, 4, 1),
        [("New Event", "2019-03-07 02:00"), ("New Event", "2019-03-08 01:00"),
         ("New Event", "2019-03-09 03:00"), ("New Event", "2019-03-10 02:00"),
         ("test7", "2019-03-18 04:00"), ("test7 - edited", "2019-03-19 04:00"),
         ("test7", "2019-03-20 04:00")], 0,
    ),
}  # fmt: skip
TESTED_ELSEWHERE = {
    "icalendar/calendars/big_bad_calendar.ics",
    "recurring-ical-events/daylight_saving_time.ics",
}


def test_every_corpus_calendar_has_an_expectation(corpus: Path) -> None:
    found = {p.relative_to(corpus / "ics").as_posix() for p in (corpus / "ics").rglob("*.ics")}
    assert found == set(CALENDARS) | TESTED_ELSEWHERE


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_corpus_calendar_occurrences(name: str, corpus: Path) -> None:
    zone, start, end, expected, skipped = CALENDARS[name]
    parsed = _parse(name, zone, start, end)
    assert _shown(parsed.events) == expected
    if skipped:
        assert parsed.warning is not None
        assert f"skipped {skipped} broken event(s)" in parsed.warning
    else:
        assert parsed.warning is None


def test_berlin_weekly_event_keeps_its_wall_clock_time_across_the_march_dst_change(
    corpus: Path,
) -> None:
    parsed = _parse(
        "recurring-ical-events/daylight_saving_time.ics",
        BERLIN,
        date(2019, 3, 18),
        date(2019, 4, 8),
    )
    chaostreff = [e for e in parsed.events if e.title == "Chaostreff - CCCP"]
    assert [e.start.strftime("%Y-%m-%d %H:%M") for e in chaostreff] == [
        "2019-03-20 19:00",
        "2019-03-27 19:00",
        "2019-04-03 19:00",
    ]
    # Same local time, so the instant moves by the hour Berlin springs forward on 31 March.
    assert [e.start.utcoffset() for e in chaostreff] == [
        timedelta(hours=1),
        timedelta(hours=1),
        timedelta(hours=2),
    ]
    assert all(e.end is not None and e.end - e.start == timedelta(hours=2) for e in chaostreff)
    # Shown in New York, already on summer time since 10 March, the same meetings move.
    in_new_york = _parse(
        "recurring-ical-events/daylight_saving_time.ics", NY, date(2019, 3, 18), date(2019, 4, 8)
    )
    assert [
        e.start.strftime("%m-%d %H:%M")
        for e in in_new_york.events
        if e.title == "Chaostreff - CCCP"
    ] == ["03-20 14:00", "03-27 14:00", "04-03 13:00"]


def test_corpus_calendar_details_survive_folding_and_escaping(corpus: Path) -> None:
    (meetup,) = _parse(
        "icalendar/events/issue_53_description_parsed_properly.ics",
        NY,
        date(2012, 7, 1),
        date(2012, 8, 1),
    ).events
    assert meetup.url == "http://www.meetup.com/DevOpsDC/events/47635522/"
    assert meetup.location.startswith("Fathom Creative, Inc. (1333 14th Street Northwest")
    assert meetup.description.startswith("DevOpsDC Thursday, July 12 at 6:30 PM")
    assert "\\," not in meetup.description + meetup.location
    (orthodox,) = _parse(
        "icalendar/calendars/example.ics", UTC, date(2022, 1, 6), date(2022, 1, 8)
    ).events
    assert (orthodox.location, orthodox.description) == ("Russia", "It is Christmas again!")


def test_a_calendar_that_cannot_be_read_is_refused_with_a_reason(corpus: Path) -> None:
    with pytest.raises(SourceError, match="not a valid iCalendar file"):
        _parse("icalendar/calendars/big_bad_calendar.ics", UTC, date(2000, 1, 1), date(2030, 1, 1))


def test_a_broken_calendar_is_reported_by_its_key_and_the_good_one_still_stored(
    corpus: Path, make_project
) -> None:
    project = make_project(
        f"""
        [[sources.calendars]]
        name = "bad"
        url = {json.dumps(str(corpus / "ics/icalendar/calendars/big_bad_calendar.ics"))}

        [[sources.calendars]]
        name = "good"
        url = {json.dumps(str(EXAMPLES / "calendar.ics"))}
        """
    )
    report = collect(project.settings(), project.engine(), NOW)
    bad, good = report.outcomes
    assert bad.error is not None
    assert "calendar 'bad'" in bad.error
    assert "sources.calendars[1]" in bad.error
    assert good.error is None
    assert good.added > 0
    assert not report.all_failed
