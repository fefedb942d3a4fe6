"""Collecting local sources: dedup, dates, summaries, staff notes and the example calendar."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from typer.testing import CliRunner

from digest.build import build
from digest.cli import app
from digest.collect import collect
from digest.collect.calendars import parse_calendar
from digest.models import ItemKind
from digest.store.content import events_between
from digest.store.tables import items
from tests.conftest import EXAMPLES, NOW, ZONE

runner = CliRunner()


def rss(*entries: str) -> str:
    channel = "<title>t</title>" + "".join(entries)
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{channel}</channel></rss>'


def entry(title: str, link: str, when: datetime | None = None, body: str = "") -> str:
    date = f"<pubDate>{when:%a, %d %b %Y %H:%M:%S %z}</pubDate>" if when else ""
    return (
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>{date}"
        f"<description><![CDATA[{body}]]></description></item>"
    )


def feeds_project(make_project, tmp_path: Path, *bodies: str, extra: str = ""):
    """A project with one local feed per body, named f0, f1, ..."""
    toml = extra
    for i, body in enumerate(bodies):
        (tmp_path / f"f{i}.xml").write_text(body, encoding="utf-8")
        toml += f'\n[[sources.feeds]]\nname = "f{i}"\nurl = "f{i}.xml"\nsection = "news"\n'
    return make_project(toml)


def stored(engine) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(items).order_by(items.c.title)).mappings())


# --- dedup --------------------------------------------------------------------------

STORY = "https://example.org/news/story-one"


@pytest.mark.parametrize(
    "variant",
    [
        f"{STORY}?utm_source=newsletter&utm_medium=email&utm_campaign=w48",
        f"{STORY}#comments",
        f"{STORY}/",
        "https://EXAMPLE.Org/news/story-one",
    ],
    ids=["utm-params", "fragment", "trailing-slash", "host-case"],
)
def test_the_same_link_in_another_feed_is_merged(make_project, tmp_path, variant) -> None:
    project = feeds_project(
        make_project,
        tmp_path,
        rss(entry("Council votes on the budget", STORY, NOW - timedelta(days=1))),
        rss(entry("Budget vote: what happened", variant, NOW - timedelta(days=20))),
    )
    engine = project.engine()
    first, second = collect(project.settings(), engine, NOW).outcomes
    assert (first.added, second.added, second.merged) == (1, 0, 1)
    assert [r["title"] for r in stored(engine)] == ["Council votes on the budget"]


def test_a_link_with_another_real_query_is_another_story(make_project, tmp_path) -> None:
    project = feeds_project(
        make_project,
        tmp_path,
        rss(entry("Opening statements in Harlow", "https://example.org/notes?day=1")),
        rss(
            entry(
                "The defence calls its first witness",
                "https://example.org/notes?day=2&utm_source=x",
            )
        ),
    )
    engine = project.engine()
    report = collect(project.settings(), engine, NOW)
    assert [o.merged for o in report.outcomes] == [0, 0]
    assert [r["url"] for r in stored(engine)] == [
        "https://example.org/notes?day=1",
        "https://example.org/notes?day=2",
    ]


@pytest.mark.parametrize(("days_apart", "merged"), [(1, True), (3, True), (5, False)])
def test_near_identical_headlines_within_three_days_are_merged(
    make_project, tmp_path, days_apart: int, merged: bool
) -> None:
    when = NOW - timedelta(days=6)
    project = feeds_project(
        make_project,
        tmp_path,
        rss(
            entry("Council approves two new overdose prevention sites", "https://a.example/1", when)
        ),
        rss(
            entry(
                "City council approves two new overdose-prevention sites",
                "https://b.example/2",
                when + timedelta(days=days_apart),
            )
        ),
    )
    engine = project.engine()
    _, second = collect(project.settings(), engine, NOW).outcomes
    assert second.merged == int(merged)
    assert len(stored(engine)) == (1 if merged else 2)


def test_collecting_the_examples_again_stores_nothing_twice(make_project, tmp_path) -> None:
    for name in ("news.xml", "blog.atom"):
        shutil.copy(EXAMPLES / "feeds" / name, tmp_path / name)
    project = make_project(
        f"""
        [[sources.feeds]]
        name = "news"
        url = "news.xml"
        [[sources.feeds]]
        name = "stories"
        url = "blog.atom"
        section = "stories"
        [[sources.calendars]]
        name = "events"
        url = {json.dumps(str(EXAMPLES / "calendar.ics"))}
        [sources.notes]
        dir = {json.dumps(str(EXAMPLES / "notes"))}
        """
    )
    settings, engine = project.settings(), project.engine()
    first = collect(settings, engine, NOW)
    assert first.added > 0 and not first.failed
    count = len(stored(engine))

    again = collect(settings, engine, NOW + timedelta(hours=1))
    assert [o.not_modified for o in again.outcomes[:2]] == [True, True]
    # Edited files (a new mtime) are read and parsed again: still nothing new.
    for name in ("news.xml", "blog.atom"):
        os.utime(tmp_path / name, (NOW.timestamp() + 7200, NOW.timestamp() + 7200))
    third = collect(settings, engine, NOW + timedelta(hours=2))
    assert [o.not_modified for o in third.outcomes[:2]] == [False, False]
    assert again.added == third.added == 0
    assert len(stored(engine)) == count


# --- dates and summaries ------------------------------------------------------------


def test_missing_dates_become_first_seen_and_future_dates_are_clamped(
    make_project, tmp_path
) -> None:
    earlier = (NOW - timedelta(days=2)).replace(microsecond=0)
    project = feeds_project(
        make_project,
        tmp_path,
        rss(
            entry("No date at all", "https://example.org/a"),
            entry("From next year", "https://example.org/b", NOW + timedelta(days=400)),
            entry("Two days ago", "https://example.org/c", earlier),
        ),
    )
    engine = project.engine()
    collect(project.settings(), engine, NOW)
    published = {r["title"]: r["published"] for r in stored(engine)}
    assert published == {"No date at all": NOW, "From next year": NOW, "Two days ago": earlier}
    assert {r["first_seen"] for r in stored(engine)} == {NOW}


def test_summaries_are_cut_at_a_word_boundary_with_an_ellipsis(make_project, tmp_path) -> None:
    long_text = (
        "Harbor City Council voted nine to four on Tuesday evening to approve zoning "
        "for two new overdose prevention sites in Northgate and the Lower Wharf."
    )
    project = feeds_project(
        make_project,
        tmp_path,
        rss(
            entry("Long", "https://example.org/long", body=f"<p>{long_text}</p>"),
            entry(
                "Short",
                "https://example.org/short",
                body="<p>Just <b>six</b> words, nothing more.</p>",
            ),
        ),
        extra="[collect]\nsummary_chars = 60\n",
    )
    engine = project.engine()
    collect(project.settings(), engine, NOW)
    summaries = {r["title"]: r["summary"] for r in stored(engine)}
    cut = summaries["Long"]
    # 60 characters would end inside "to": the cut goes back to the last whole word.
    assert cut == "Harbor City Council voted nine to four on Tuesday evening…"
    assert len(cut) <= 60
    assert summaries["Short"] == "Just six words, nothing more."


# --- staff notes --------------------------------------------------------------------


def write_notes(folder: Path, notes: dict[str, str]) -> None:
    folder.mkdir(exist_ok=True)
    for name, text in notes.items():
        (folder / name).write_text(text, encoding="utf-8")


def notes_project(make_project, tmp_path: Path, notes: dict[str, str]):
    write_notes(tmp_path / "notes", notes)
    return make_project('[sources.notes]\ndir = "notes"\n')


GOOD_NOTES = {
    "editor.md": "---\ntitle: From the editor\ndate: 2026-11-25\neditor_note: true\n---\nHello.\n",
    "books.md": "---\ntitle: Books drive\ndate: 2026-11-23\nsection: stories\npin: true\n---\n"
    "Paperbacks **only**.\n",
    "plain.md": "---\ntitle: Office closed Friday\n---\nBack on Monday.\n",
}


def test_notes_carry_editor_note_pin_and_section(make_project, tmp_path) -> None:
    project = notes_project(make_project, tmp_path, GOOD_NOTES)
    engine = project.engine()
    (outcome,) = collect(project.settings(), engine, NOW).outcomes
    assert (outcome.added, outcome.error, outcome.warnings) == (3, None, [])
    rows = {r["title"]: r for r in stored(engine)}
    shown = {t: (r["kind"], r["pinned"], r["section"]) for t, r in rows.items()}
    assert shown == {
        "From the editor": (ItemKind.EDITOR_NOTE, False, "news"),
        "Books drive": (ItemKind.NOTE, True, "stories"),
        "Office closed Friday": (ItemKind.NOTE, False, "news"),
    }
    assert rows["Books drive"]["body_html"] == "<p>Paperbacks <strong>only</strong>.</p>"
    assert rows["Office closed Friday"]["published"] == NOW  # undated: first seen


def test_a_broken_note_is_named_and_the_others_are_still_collected(make_project, tmp_path) -> None:
    project = notes_project(
        make_project,
        tmp_path,
        {
            **GOOD_NOTES,
            "bad-yaml.md": "---\ntitle: [unclosed\n---\nBody\n",
            "typo-key.md": "---\ntitle: Typo\ntags: courts\n---\nBody\n",
        },
    )
    with time_machine.travel(NOW, tick=False):
        result = runner.invoke(app, ["collect", "--config", str(project.config)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert any("bad-yaml.md" in w and "YAML" in w for w in warnings), warnings
    assert any("typo-key.md" in w and "'tags'" in w for w in warnings), warnings
    assert sorted(r["title"] for r in stored(project.engine())) == sorted(
        ["From the editor", "Books drive", "Office closed Friday"]
    )


def test_a_future_note_waits_until_its_date(make_project, tmp_path) -> None:
    project = notes_project(
        make_project,
        tmp_path,
        {"later.md": "---\ntitle: Holiday hours\ndate: 2026-11-30\n---\nClosed.\n"},
    )
    settings, engine = project.settings(), project.engine()
    assert collect(settings, engine, NOW).added == 0
    assert stored(engine) == []
    assert collect(settings, engine, NOW + timedelta(days=4)).added == 1
    (row,) = stored(engine)
    assert row["published"] == datetime(2026, 11, 30, tzinfo=ZONE)


def test_a_note_postponed_after_collection_waits_again(make_project, tmp_path) -> None:
    note = "---\ntitle: From the editor\ndate: {}\neditor_note: true\n---\nHello.\n"
    project = notes_project(make_project, tmp_path, {"editor.md": note.format("2026-11-25")})
    settings, engine = project.settings(), project.engine()
    collect(settings, engine, NOW)
    write_notes(tmp_path / "notes", {"editor.md": note.format("2026-12-24")})
    later = NOW + timedelta(hours=1)
    collect(settings, engine, later)
    result = build(settings, engine, week=None, out=tmp_path / "out", force=True, now=later)
    assert result.edition is not None
    assert result.edition.editor_note is None


def test_a_note_with_an_impossible_date_is_reported_not_fatal(make_project, tmp_path) -> None:
    project = notes_project(
        make_project,
        tmp_path,
        {**GOOD_NOTES, "typo-date.md": "---\ntitle: Typo\ndate: 2026-13-01\n---\nBody\n"},
    )
    (outcome,) = collect(project.settings(), project.engine(), NOW).outcomes
    assert outcome.added == 3
    assert any("typo-date.md" in w for w in outcome.warnings), outcome.warnings


# --- the example calendar -----------------------------------------------------------


def shown(events) -> list[tuple[str, str]]:
    return [
        (e.title, e.start.strftime("%Y-%m-%d" if e.all_day else "%Y-%m-%d %H:%M")) for e in events
    ]


def test_example_calendar_gives_the_next_two_weeks_with_exdate_and_rdate(make_project) -> None:
    url = json.dumps(str(EXAMPLES / "calendar.ics"))
    project = make_project(f'[[sources.calendars]]\nname = "events"\nurl = {url}\n')
    engine = project.engine()
    (outcome,) = collect(project.settings(), engine, NOW).outcomes
    assert outcome.error is None and outcome.warnings == []
    with engine.connect() as conn:
        upcoming = events_between(conn, NOW, NOW + timedelta(days=14), ZONE)
    # Tuesday 1 December is cancelled (EXDATE) and moved to Thursday 3 December (RDATE);
    # the lobby day (15 February 2027) is outside the window.
    assert shown(upcoming) == [
        ("Court watch: hearing on jail medication access", "2026-12-02 09:30"),
        ("Letter-writing night", "2026-12-03 18:30"),
        ("Statewide day of action for the SAFE Sites bill", "2026-12-05"),
        ("Vigil for International Overdose Awareness — remembrance gathering", "2026-12-08 17:00"),
        ("Letter-writing night", "2026-12-08 18:30"),
    ]
    day_of_action = upcoming[2]
    assert day_of_action.all_day
    assert day_of_action.location == "Civic Plaza, 1 Centre Street, Harbor City, NY 10027"
    assert day_of_action.url == "https://harborcitydpc.example.org/act/safe-sites-day-of-action/"


def test_example_calendar_keeps_local_time_across_the_november_dst_change() -> None:
    parsed = parse_calendar(
        (EXAMPLES / "calendar.ics").read_bytes(),
        source="events",
        start=datetime(2026, 10, 1, tzinfo=ZONE),
        end=datetime(2027, 3, 1, tzinfo=ZONE),
        zone=ZONE,
        description_chars=300,
    )
    letters = [e for e in parsed.events if e.title == "Letter-writing night"]
    autumn = [e for e in letters if e.start < datetime(2026, 11, 15, tzinfo=ZONE)]
    assert [e.start.strftime("%m-%d %H:%M") for e in autumn] == [
        "10-06 18:30", "10-13 18:30", "10-20 18:30", "10-27 18:30", "11-03 18:30", "11-10 18:30",
    ]  # fmt: skip
    assert [e.start.utcoffset() for e in autumn] == [timedelta(hours=-4)] * 4 + [
        timedelta(hours=-5)
    ] * 2
    assert "2026-12-01" not in {f"{e.start:%Y-%m-%d}" for e in letters}
    lobby = [e for e in parsed.events if e.title == "Lobby day at the State Capitol"]
    assert shown(lobby) == [("Lobby day at the State Capitol", "2027-02-15 08:30")]


def test_an_unchanged_calendar_still_yields_next_weeks_occurrences(make_project) -> None:
    url = json.dumps(str(EXAMPLES / "calendar.ics"))
    project = make_project(f'[[sources.calendars]]\nname = "events"\nurl = {url}\n')
    settings, engine = project.settings(), project.engine()
    collect(settings, engine, NOW)
    two_weeks_on = NOW + timedelta(days=14)  # Thursday 10 December, the file untouched
    collect(settings, engine, two_weeks_on)
    with engine.connect() as conn:
        upcoming = events_between(conn, two_weeks_on, two_weeks_on + timedelta(days=14), ZONE)
    assert shown(upcoming) == [
        ("Letter-writing night", "2026-12-15 18:30"),
        ("Letter-writing night", "2026-12-22 18:30"),
    ]


# --- one source's failure is its own ------------------------------------------------

GOOD_FEED = rss(entry("Council votes on the budget", STORY, NOW - timedelta(days=1)))


def _collect_warnings(project) -> tuple[int, list[str], str]:
    with time_machine.travel(NOW, tick=False):
        result = runner.invoke(app, ["collect", "--config", str(project.config)])
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    return result.exit_code, warnings, result.output


CALENDAR_SOURCE = f"""
[[sources.calendars]]
name = "bad"
url = {json.dumps(str(EXAMPLES / "calendar.ics"))}
"""
NOTES_SOURCE = f"[sources.notes]\ndir = {json.dumps(str(EXAMPLES / 'notes'))}\n"
# What breaks: (config lines added, function patched, name it breaks for, key, label).
BREAKING = {
    "feed": ("", "parse_feed", "f1", "sources.feeds[2]", "feed 'f1'"),
    "calendar": (
        CALENDAR_SOURCE,
        "parse_calendar",
        "bad",
        "sources.calendars[1]",
        "calendar 'bad'",
    ),
    "notes": (NOTES_SOURCE, "read_notes", None, "sources.notes", "notes"),
}


@pytest.mark.parametrize("kind", sorted(BREAKING))
def test_a_source_whose_parsing_raises_anything_fails_alone_and_says_so_plainly(
    kind: str, make_project, tmp_path, monkeypatch
) -> None:
    import digest.collect as collecting

    extra, function, name, key, label = BREAKING[kind]
    real = getattr(collecting, function)
    surprise = ValueError("not enough values to unpack (expected 2, got 0)")

    def parse(*args, **kwargs):
        if name is None or kwargs.get("source") == name:
            raise surprise
        return real(*args, **kwargs)

    monkeypatch.setattr(collecting, function, parse)
    project = feeds_project(make_project, tmp_path, GOOD_FEED, GOOD_FEED, extra=extra)

    status, warnings, output = _collect_warnings(project)

    assert status == 0, output
    (failed,) = [w for w in warnings if key in w]
    assert failed.startswith(
        f"warning: {label}: could not be read (an unexpected error: ValueError)"
    )
    assert "unpack" not in output and "Traceback" not in output
    assert "feed 'f0': 1 new" in output
    assert [r["title"] for r in stored(project.engine())] == ["Council votes on the budget"]


def test_a_source_whose_rows_the_database_refuses_is_rolled_back_alone(
    make_project, tmp_path, monkeypatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from digest.store import content

    real = content.store_items

    def store_then_refuse(conn, new):
        new = list(new)
        added = real(conn, new)
        if new and new[0].source == "f0":
            raise IntegrityError("INSERT INTO items ...", {}, Exception("UNIQUE constraint"))
        return added

    monkeypatch.setattr(content, "store_items", store_then_refuse)
    other = rss(entry("Naloxone heads to six library branches", "https://example.org/n"))
    project = feeds_project(make_project, tmp_path, GOOD_FEED, other)

    status, warnings, output = _collect_warnings(project)

    assert status == 0, output
    (failed,) = [w for w in warnings if "sources.feeds[1]" in w]
    assert "feed 'f0': could not be stored (an unexpected error: IntegrityError)" in failed
    # f0's row was inserted, then its transaction rolled back: only f1's story is there.
    assert [r["title"] for r in stored(project.engine())] == [
        "Naloxone heads to six library branches"
    ]


def test_a_broken_database_stops_the_run(make_project, tmp_path, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    from digest.store import content

    def disk_full(conn, new):
        raise OperationalError("INSERT INTO items ...", {}, Exception("database or disk is full"))

    monkeypatch.setattr(content, "store_items", disk_full)
    project = feeds_project(make_project, tmp_path, GOOD_FEED, GOOD_FEED)
    with pytest.raises(OperationalError):
        collect(project.settings(), project.engine(), NOW)


def test_a_json_feed_nested_too_deeply_is_that_feeds_error(make_project, tmp_path) -> None:
    (tmp_path / "deep.json").write_bytes(b'{"a":' * 200_000 + b"1" + b"}" * 200_000)
    (tmp_path / "good.xml").write_text(GOOD_FEED, encoding="utf-8")
    project = make_project(
        '[[sources.feeds]]\nname = "deep"\nurl = "deep.json"\n'
        '[[sources.feeds]]\nname = "good"\nurl = "good.xml"\n'
        "[collect]\nmax_bytes = 2000000\n"
    )
    deep, good = collect(project.settings(), project.engine(), NOW).outcomes
    assert deep.error == (
        "feed 'deep': not valid JSON (nested too deeply): check sources.feeds[1].url in config.toml"
    )
    assert (good.error, good.added) == (None, 1)


def test_the_occurrence_caps_come_from_config_and_name_the_calendar(make_project, tmp_path) -> None:
    (tmp_path / "drop-in.ics").write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\nUID:drop-in-1\r\n"
        b"DTSTART:20261126T150000Z\r\nRRULE:FREQ=SECONDLY\r\nSUMMARY:Drop-in\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    project = make_project(
        '[[sources.calendars]]\nname = "events"\nurl = "drop-in.ics"\n'
        "[collect]\nmax_occurrences_per_event = 50\n"
    )
    (outcome,) = collect(project.settings(), project.engine(), NOW).outcomes
    assert (outcome.error, outcome.upcoming) == (None, 50)
    assert outcome.warnings == [
        "calendar 'events' (sources.calendars[1]): event 'Drop-in' (uid drop-in-1) repeats "
        "more than 50 times in the window; the first 50 are kept "
        "(collect.max_occurrences_per_event)"
    ]
