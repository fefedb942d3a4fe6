"""Calendars as real servers (and hostile ones) write them, each shape in a small inline file.

Every shape here once lost events quietly, crashed a collect or took minutes: several
VCALENDARs in one file, Exchange's spaces in rule lists, rules nobody can read, moved
occurrences landing on the same time, broken events unnamed, and rules that repeat
every second.
"""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from digest.collect.calendars import Caps, ParsedCalendar, parse_calendar
from digest.errors import SourceError

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
# A Thursday morning window, as collect asks for it: yesterday on, three weeks ahead.
START = datetime(2026, 11, 25, 7, 0, tzinfo=NY)
END = datetime(2026, 12, 17, tzinfo=NY)


def ics(*events: str, extra: str = "") -> bytes:
    """One VCALENDAR around ``events`` (each a VEVENT's lines, without BEGIN/END)."""
    body = "".join(f"BEGIN:VEVENT\n{e.strip()}\nEND:VEVENT\n" for e in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{extra}{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def parse(body: bytes, caps: Caps | None = None) -> ParsedCalendar:
    return parse_calendar(
        body,
        source="events",
        start=START,
        end=END,
        zone=NY,
        description_chars=300,
        caps=caps or Caps(),
    )


def shown(parsed: ParsedCalendar) -> list[tuple[str, str]]:
    return [(e.title, e.start.strftime("%a %m-%d %H:%M")) for e in parsed.events]


# --- repeating without end --------------------------------------------------------------

SECONDLY_DAY = ics(
    """
UID:drop-in-1
DTSTART:20261126T150000Z
RRULE:FREQ=SECONDLY;UNTIL=20261127T150000Z
SUMMARY:Drop-in
"""
)


def test_a_rule_repeating_every_second_for_a_day_is_cut_at_the_cap_quickly() -> None:
    assert len(SECONDLY_DAY) < 200
    began = time.perf_counter()
    parse(SECONDLY_DAY)
    elapsed = time.perf_counter() - began
    tracemalloc.start()
    try:
        parsed = parse(SECONDLY_DAY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Before: 86,400 occurrences, 10-17 s and 290 MB. Now the first 500, in about 0.2 s
    # (the bound leaves room for a busy machine).
    assert elapsed < 3, f"{elapsed:.2f} s"
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB"
    assert len(parsed.events) == 500
    first = parsed.events[0].start
    assert [e.start - first for e in parsed.events] == [timedelta(seconds=s) for s in range(500)]
    assert parsed.warnings == (
        "event 'Drop-in' (uid drop-in-1) repeats more than 500 times in the window; "
        "the first 500 are kept (collect.max_occurrences_per_event)",
    )


def test_the_calendar_cap_keeps_what_fits_and_names_the_event_where_it_stopped() -> None:
    hourly = [
        f"UID:hour-{n}\nDTSTART:20261126T{10 + n:02d}0000Z\nRRULE:FREQ=HOURLY\nSUMMARY:Hour {n}"
        for n in range(3)
    ]
    parsed = parse(ics(*hourly, "UID:one\nDTSTART:20261127T150000Z\nSUMMARY:Once"), Caps(5, 12))
    titles = [e.title for e in parsed.events]
    assert (titles.count("Hour 0"), titles.count("Hour 1"), titles.count("Hour 2")) == (5, 5, 2)
    assert "Once" not in titles
    over_event, over_calendar = parsed.warnings
    assert over_event.startswith("event 'Hour 0' (uid hour-0), event 'Hour 1' (uid hour-1) repeat")
    assert over_calendar == (
        "more than 12 occurrences in the window: 12 are kept, the rest from event 'Hour 2' "
        "(uid hour-2) on are left out (collect.max_occurrences_per_calendar)"
    )


def test_a_dense_rule_begun_a_year_ago_is_worked_out_from_near_the_window() -> None:
    parsed = parse(ics("UID:tick\nDTSTART:20251126T000000Z\nRRULE:FREQ=SECONDLY\nSUMMARY:Tick"))
    assert len(parsed.events) == 500
    assert parsed.events[0].start == START  # every second, so one at the window's start


def test_a_rule_with_too_many_dates_before_the_window_keeps_only_its_first_date() -> None:
    counted = "UID:c\nDTSTART:20251126T000000Z\nRRULE:FREQ=SECONDLY;COUNT=999999999\nSUMMARY:C"
    began = time.perf_counter()
    parsed = parse(ics(counted, "UID:ok\nDTSTART:20261201T180000Z\nSUMMARY:Meeting"))
    assert time.perf_counter() - began < 1.5
    assert shown(parsed) == [("Meeting", "Tue 12-01 13:00")]  # the first date is last year
    assert parsed.warnings == (
        "event 'C' (uid c) has a repeat rule that makes too many dates to work out: "
        "only its first date is kept",
    )


# Rules whose DTSTART lies years back: they are worked out from just before the window,
# and must give what recurring_ical_events itself gives from the real DTSTART.
LONG_RUNNING = {
    "fortnightly-berlin": "DTSTART;TZID=Europe/Berlin:20120104T183000\n"
    "DTEND;TZID=Europe/Berlin:20120104T203000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=WE,FR",
    "daily-floating": "DTSTART:19990311T090000\nRRULE:FREQ=DAILY;INTERVAL=3",
    "quarter-hours": "DTSTART:20200101T000700Z\nRRULE:FREQ=HOURLY;INTERVAL=5;BYMINUTE=7,37",
    "weekly-all-day": "DTSTART;VALUE=DATE:20010102\nRRULE:FREQ=WEEKLY;WKST=SU;BYDAY=TU,SU",
    "minutely-mornings": "DTSTART:20190101T080000Z\nRRULE:FREQ=MINUTELY;INTERVAL=7;BYHOUR=9",
}


@pytest.mark.parametrize("rule", sorted(LONG_RUNNING))
def test_a_long_running_series_gives_the_same_dates_as_the_library(rule: str) -> None:
    body = ics(f"UID:{rule}\nSUMMARY:S\n{LONG_RUNNING[rule]}")
    found = recurring_ical_events.of(icalendar.Calendar.from_ical(body)).between(START, END)
    expected = sorted(_local(occ["DTSTART"].dt) for occ in found)[:500]
    assert [e.start for e in parse(body).events] == expected
    assert expected  # each rule has dates in the window


def _local(value: object) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, datetime.min.time(), tzinfo=NY)  # type: ignore[arg-type]
    return value.replace(tzinfo=NY) if value.tzinfo is None else value.astimezone(NY)


# --- how real servers write them ---------------------------------------------------------


def test_several_vcalendars_in_one_file_are_read_as_one() -> None:
    zone = (
        "BEGIN:VTIMEZONE\nTZID:Harbor Standard\nBEGIN:STANDARD\nDTSTART:19700101T000000\n"
        "TZOFFSETFROM:-0500\nTZOFFSETTO:-0500\nEND:STANDARD\nEND:VTIMEZONE\n"
    )
    first = ics("UID:a\nDTSTART:20261201T230000Z\nSUMMARY:Vigil")
    second = ics("UID:b\nDTSTART;TZID=Harbor Standard:20261203T183000\nSUMMARY:Letters", extra=zone)
    parsed = parse(first + second)
    assert shown(parsed) == [("Vigil", "Tue 12-01 18:00"), ("Letters", "Thu 12-03 18:30")]
    assert parsed.warnings == ()


def test_an_event_nested_in_an_event_is_not_one_and_costs_nothing() -> None:
    # Nested VEVENTs are in no real calendar; walking them from each event took minutes.
    inner = "BEGIN:VEVENT\nUID:inner\nDTSTART:20261202T170000Z\nSUMMARY:Inner\n" * 3000
    outer = "UID:outer\nDTSTART:20261201T170000Z\nSUMMARY:Outer\n"
    body = ics(outer + inner + "END:VEVENT\n" * 3000)
    began = time.perf_counter()
    assert shown(parse(body)) == [("Outer", "Tue 12-01 12:00")]
    assert time.perf_counter() - began < 5


def test_exchange_spaces_in_a_folded_rule_list_keep_the_whole_series() -> None:
    # Exchange writes "BYDAY=MO, TU, WE"; this one is also folded inside the list.
    body = ics(
        "UID:standup\nDTSTART;TZID=America/New_York:20261130T093000\n"
        "RRULE:FREQ=DAILY;BYDAY=MO, TU,\n  WE;COUNT=6\nSUMMARY:Stand-up"
    )
    assert shown(parse(body)) == [
        ("Stand-up", day)
        for day in (
            "Mon 11-30 09:30", "Tue 12-01 09:30", "Wed 12-02 09:30",
            "Mon 12-07 09:30", "Tue 12-08 09:30", "Wed 12-09 09:30",
        )
    ]  # fmt: skip
    assert parse(body).warnings == ()


def test_a_series_whose_rule_cannot_be_read_keeps_its_first_date_and_says_why() -> None:
    body = ics(
        "UID:odd\nDTSTART:20261202T170000Z\nRRULE:FREQ=SOMETIMES;BYDAY=MO\nSUMMARY:Clinic",
        "UID:fine\nDTSTART:20261203T170000Z\nRRULE:FREQ=WEEKLY;COUNT=2\nSUMMARY:Walk",
    )
    parsed = parse(body)
    assert shown(parsed) == [
        ("Clinic", "Wed 12-02 12:00"),
        ("Walk", "Thu 12-03 12:00"),
        ("Walk", "Thu 12-10 12:00"),
    ]
    assert parsed.warnings == (
        "event 'Clinic' (uid odd) has a repeat rule (RRULE) 'FREQ=SOMETIMES;BYDAY=MO' that "
        "cannot be read: only its first date is kept",
    )


def test_occurrences_moved_onto_the_same_time_stay_two_and_unmoved_keys_do_not_change() -> None:
    series = (
        "UID:court\nDTSTART;TZID=America/New_York:20261130T100000\n"
        "RRULE:FREQ=DAILY;COUNT=3\nSUMMARY:Court watch"
    )
    # Monday's and Tuesday's hearings were both moved to Wednesday 10:00, on top of it.
    moved = [
        f"UID:court\nRECURRENCE-ID;TZID=America/New_York:202612{day}T100000\n"
        f"DTSTART;TZID=America/New_York:20261202T100000\nSUMMARY:Court watch (moved)"
        for day in ("01", "02")
    ]
    parsed = parse(ics(series, *moved))
    assert shown(parsed) == [
        ("Court watch", "Mon 11-30 10:00"),
        ("Court watch (moved)", "Wed 12-02 10:00"),
        ("Court watch (moved)", "Wed 12-02 10:00"),
    ]
    assert len({e.key for e in parsed.events}) == 3
    # An event stored before keeps its key: source, UID and start, as it always was.
    monday = parsed.events[0]
    basis = f"events\0court\0{monday.start.isoformat()}"
    assert monday.key == hashlib.sha256(basis.encode()).hexdigest()[:40]


def test_occurrences_moved_by_a_this_and_future_change_keep_keys_of_their_own() -> None:
    # From Wednesday on, the daily meeting is an hour later: every later occurrence carries
    # that one RECURRENCE-ID, so it cannot be what tells them apart.
    series = "UID:daily\nDTSTART:20261130T150000Z\nRRULE:FREQ=DAILY;COUNT=5\nSUMMARY:Daily"
    later = (
        "UID:daily\nRECURRENCE-ID;RANGE=THISANDFUTURE:20261202T150000Z\n"
        "DTSTART:20261202T160000Z\nSUMMARY:Daily"
    )
    parsed = parse(ics(series, later))
    assert [e.start.strftime("%d %H:%M") for e in parsed.events] == [
        "30 10:00", "01 10:00", "02 11:00", "03 11:00", "04 11:00",
    ]  # fmt: skip
    assert len({e.key for e in parsed.events}) == 5


BROKEN = [
    "UID:b1\nSUMMARY:No start",
    "UID:b2\nDTSTART;;VALUE=DATE-TIME:20261201T093000\nSUMMARY:Two semicolons",
    "UID:b3\nDTSTART:20261201T093000Z\nDURATION:P999999999999999999W\nSUMMARY:Forever",
    "UID:b4\nDTSTART:20261201T000000Z\nRDATE;VALUE=TIME:133000Z\nSUMMARY:Time only",
    "UID:b5\nDTSTART;VALUE=DATE:20261201\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE;VALUE=DATE:\n"
    "SUMMARY:Empty exdate",
]


def test_each_broken_event_is_named_with_what_is_wrong_in_plain_words() -> None:
    parsed = parse(ics(*BROKEN, "UID:good\nDTSTART:20261201T230000Z\nSUMMARY:Vigil"))
    assert shown(parsed) == [("Vigil", "Tue 12-01 18:00")]
    (warning,) = parsed.warnings
    assert warning == (
        "skipped 5 broken event(s): event 'No start' (uid b1) has no start time (DTSTART); "
        "event 'Two semicolons' (uid b2) has no start time (DTSTART): its line "
        "'DTSTART;;VALUE=DATE-TIME:20261201T093000' cannot be read; "
        "event 'Forever' (uid b3) has a DURATION 'P999999999999999999W' that cannot be read; "
        "and 2 more"
    )


def test_the_unnamed_broken_events_have_their_reasons_too() -> None:
    parsed = parse(ics(*BROKEN[3:]))
    assert parsed.warnings == (
        "skipped 2 broken event(s): event 'Time only' (uid b4) has an RDATE that is a time "
        "of day without a date; event 'Empty exdate' (uid b5) has an empty EXDATE",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"BEGIN:VCALENDAR\r\nX;;a=b:1\r\nEND:VCALENDAR\r\n", "line 'X;;a=b:1' cannot be read"),
        (b"<!doctype html><p>Moved</p>", "line '<!doctype html><p>Moved</p>' cannot be read"),
        (b"END:VCALENDAR\r\n", "an END line has no BEGIN line"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "no BEGIN:VCALENDAR ... END:VCALENDAR"),
    ],
)
def test_a_file_that_is_no_calendar_is_refused_in_plain_words(body: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as refused:
        parse(body)
    assert str(refused.value) == f"not a valid iCalendar file ({reason})"
