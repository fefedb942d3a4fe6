"""iCalendar documents into event occurrences in the organisation's timezone."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from digest.collect import recurrence
from digest.collect.recurrence import RuleUnusable, Window
from digest.collect.sanitize import cut_at_word, html_to_text, one_line
from digest.collect.urls import clean_url
from digest.errors import SourceError
from digest.models import Event

log = logging.getLogger(__name__)

NAMED_AT_MOST = 3  # broken events named in a warning; the rest are counted
# The most of an event's description kept for print (the email shows description_chars).
DESCRIPTION_FULL_CHARS = 4000
_UNREADABLE_LINE = re.compile(r"Content line could not be parsed into parts: '(.*?)':", re.DOTALL)
_RULE_PROPERTIES = ("RRULE", "EXRULE")


@dataclass(frozen=True, slots=True)
class Caps:
    """At most this many occurrences in the window per event (UID) and per calendar."""

    per_event: int = 500
    per_calendar: int = 5000


DEFAULT_CAPS = Caps()


@dataclass(frozen=True, slots=True)
class ParsedCalendar:
    events: list[Event]
    warnings: tuple[str, ...] = ()

    @property
    def warning(self) -> str | None:
        """Every warning on one line (None when there is none)."""
        return "; ".join(self.warnings) or None


@dataclass(slots=True)
class _Notes:
    """What went wrong with which event, for the warnings."""

    broken: list[str] = field(default_factory=list)  # each event named, and what is wrong
    first_only: list[str] = field(default_factory=list)
    over_cap: list[str] = field(default_factory=list)
    calendar_full_at: str | None = None


def parse_calendar(
    body: bytes,
    *,
    source: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    description_chars: int,
    caps: Caps = DEFAULT_CAPS,
) -> ParsedCalendar:
    """Every occurrence between ``start`` and ``end``; broken events are skipped and named."""
    groups, zones = read_events(body)
    notes = _Notes()
    events: list[Event] = []
    left = caps.per_calendar
    for comps in groups:
        take = min(caps.per_event, left)
        found = _occurrences(comps, zones, Window(start, end, zone), take + 1, notes)
        if len(found) > take and take < caps.per_event:
            notes.calendar_full_at = name_of(comps)
        elif len(found) > take:
            notes.over_cap.append(name_of(comps))
        events.extend(_events(found[:take], comps, source, zone, description_chars, notes))
        left -= len(found[:take])
        if notes.calendar_full_at:
            break
    ordered = sorted(events, key=lambda e: (e.start, e.title))
    return ParsedCalendar(ordered, _warnings(notes, caps))


def read_events(body: bytes) -> tuple[list[list[Any]], list[Any]]:
    """The VEVENTs grouped by UID, and the VTIMEZONEs, of every VCALENDAR in ``body``."""
    try:
        found = icalendar.Calendar.from_ical(body, multiple=True)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SourceError(f"not a valid iCalendar file ({_plain_parse_error(exc)})") from None
    if not found:
        raise SourceError("not a valid iCalendar file (no BEGIN:VCALENDAR ... END:VCALENDAR)")
    zones: dict[str, Any] = {}
    groups: dict[str, list[Any]] = {}
    for comp in (part for top in found for part in [top, *top.subcomponents]):
        if comp.name == "VTIMEZONE":
            zones.setdefault(str(comp.get("TZID", "")), comp)
        elif comp.name == "VEVENT":
            _keep_alarms_only(comp)
            _repair_rules(comp)
            groups.setdefault(str(comp.get("UID") or id(comp)), []).append(comp)
    return list(groups.values()), list(zones.values())


def _keep_alarms_only(event: Any) -> None:
    """A VEVENT holds VALARMs at most; events nested in events are no real calendar's."""
    event.subcomponents = [c for c in event.subcomponents if c.name == "VALARM"]


def _repair_rules(comp: Any) -> None:
    """Microsoft Exchange writes ``BYDAY=MO, TU``: read the rule again without the spaces."""
    for prop in _RULE_PROPERTIES:
        value = comp.get(prop)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        repaired = [_without_spaces(v) for v in values]
        comp[prop] = repaired if isinstance(value, list) else repaired[0]


def _without_spaces(rule: Any) -> Any:
    if not isinstance(rule, icalendar.vBroken):
        return rule
    try:
        return icalendar.vRecur.from_ical(re.sub(r"\s+", "", str(rule)))
    except ValueError:
        return rule


def _occurrences(
    comps: list[Any], zones: list[Any], window: Window, limit: int, notes: _Notes
) -> list[Any]:
    """One event's occurrences as components; a rule that cannot be used leaves DTSTART."""
    try:
        return [o.as_component(False) for o in recurrence.occurrences(comps, zones, window, limit)]
    except Exception as exc:  # any failure is this event's, named below
        problem = exc
        log.debug("event %s cannot be expanded", name_of(comps), exc_info=True)
    if recurrence.has_rules(comps):
        try:
            bare = recurrence.without_rules(comps)
            found = recurrence.occurrences(bare, zones, window, limit)
        except Exception as exc:
            problem = exc
        else:
            notes.first_only.append(f"{name_of(comps)} {_rule_problem(problem, comps)}")
            return [o.as_component(False) for o in found]
    notes.broken.append(f"{name_of(comps)} {_problem(problem, comps)}")
    return []


def _events(
    found: list[Any], comps: list[Any], source: str, zone: ZoneInfo, chars: int, notes: _Notes
) -> list[Event]:
    events, problem = [], None
    for occ in found:
        try:
            event = _to_event(occ, source, zone, chars)
        except Exception as exc:  # this occurrence's, skipped and named
            problem = exc
            continue
        if event is not None:
            events.append(event)
    if problem is not None:
        notes.broken.append(f"{name_of(comps)} {_problem(problem, comps)}")
    return events


def _to_event(occ: Any, source: str, zone: ZoneInfo, description_chars: int) -> Event | None:
    if str(occ.get("STATUS", "")).upper() == "CANCELLED":
        return None
    begin = occ["DTSTART"].dt
    all_day = not isinstance(begin, datetime)
    start = _local(begin, zone)
    finish = _local(occ["DTEND"].dt, zone) if occ.get("DTEND") else None
    if finish is not None and finish <= start:
        finish = None  # no end given (the library fills in DTEND = DTSTART)
    uid = str(occ.get("UID", ""))
    title = _title(occ)
    text = html_to_text(str(occ.get("DESCRIPTION", "")))[:DESCRIPTION_FULL_CHARS]
    description = cut_at_word(text, description_chars)
    slot = _local(_slot(occ), zone)
    basis = f"{source}\0{uid or title}\0{slot.isoformat()}"
    return Event(
        key=hashlib.sha256(basis.encode()).hexdigest()[:40],
        source=source,
        title=title,
        start=start,
        end=finish,
        all_day=all_day,
        location=one_line(html_to_text(str(occ.get("LOCATION", "")))),
        url=clean_url(str(occ["URL"])) if occ.get("URL") else None,
        description=description,
        description_full=_whole_paragraphs(text) if description != text else "",
    )


def _whole_paragraphs(text: str) -> str:
    """The description for print: whole, or (past the bound) its whole paragraphs."""
    if len(text) < DESCRIPTION_FULL_CHARS:
        return text
    kept = text[:DESCRIPTION_FULL_CHARS].rsplit("\n\n", 1)[0]
    return kept if kept != text[:DESCRIPTION_FULL_CHARS] else cut_at_word(text, 2000)


def _slot(occ: Any) -> date | datetime:
    """Which occurrence of its series this is: its RECURRENCE-ID, else its start.

    A moved occurrence keeps the slot it was moved from, so two moved onto the same
    time stay two. (The library gives every occurrence a RECURRENCE-ID equal to its
    start; one of RANGE=THISANDFUTURE is shared by all later occurrences: start then.)
    """
    rid = occ.get("RECURRENCE-ID")
    if rid is None or rid.params.get("RANGE", "").upper() == "THISANDFUTURE":
        rid = occ["DTSTART"]
    slot: date | datetime = rid.dt
    return slot


def _title(comp: Any) -> str:
    return one_line(html_to_text(str(comp.get("SUMMARY", "")))) or "(untitled event)"


def name_of(comps: list[Any]) -> str:
    """An event as a warning names it: its summary and UID."""
    comp = next((c for c in comps if "RECURRENCE-ID" not in c), comps[0])
    uid = one_line(str(comp.get("UID", "")))
    which = f"uid {_clip(uid)}" if uid else "no uid"
    return f"event {_clip(_title(comp))!r} ({which})"


def _problem(exc: Exception, comps: list[Any]) -> str:
    """What is wrong with an event that cannot be shown, in plain words."""
    if isinstance(exc, RuleUnusable):
        return str(exc)
    line = _unreadable_line(comps)
    if not any("DTSTART" in c for c in comps) or (isinstance(exc, KeyError) and line):
        unreadable = f": its line {line!r} cannot be read" if line else ""
        return f"has no start time (DTSTART){unreadable}"
    if (broken := _broken_property(comps)) is not None:
        name, raw = broken
        if not raw.strip():
            return f"has an empty {name}"
        return f"has a {name} {raw!r} that cannot be read"
    if line:
        return f"has a line that cannot be read: {line!r}"
    if (dates := _time_only(comps)) is not None:
        return f"has an {dates} that is a time of day without a date"
    if isinstance(exc, TypeError):
        return "mixes dates, times and time zones that cannot be put in order"
    if isinstance(exc, OverflowError):
        return "has a date too far in the past or the future"
    return f"cannot be read (an unexpected error: {type(exc).__name__})"


def _rule_problem(exc: Exception, comps: list[Any]) -> str:
    if isinstance(exc, RuleUnusable):
        why = str(exc)
    else:
        rules = [str(c.get("RRULE")) for c in comps if "RRULE" in c]
        why = f"has a repeat rule (RRULE) that cannot be worked out ({_clip(rules[0])!r})"
    return f"{why}: only its first date is kept"


def _broken_property(comps: list[Any]) -> tuple[str, str] | None:
    for comp in comps:
        for name, value in comp.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, icalendar.vBroken):
                    return name, _clip(str(v))
    return None


def _time_only(comps: list[Any]) -> str | None:
    """RDATE or EXDATE when one holds a bare time (VALUE=TIME), which no date matches."""
    for comp in comps:
        for name in ("RDATE", "EXDATE"):
            value = comp.get(name, [])
            for prop in value if isinstance(value, list) else [value]:
                if any(isinstance(p.dt, time) for p in getattr(prop, "dts", [])):
                    return name
    return None


def _unreadable_line(comps: list[Any]) -> str | None:
    for comp in comps:
        for _prop, message in comp.errors:
            match = _UNREADABLE_LINE.search(message)
            if match:
                return _clip(match.group(1))
    return None


def _plain_parse_error(exc: Exception) -> str:
    text = str(exc)
    match = _UNREADABLE_LINE.search(text)
    if match:
        return f"line {_clip(one_line(match.group(1)))!r} cannot be read"
    if text.startswith("END encountered without"):
        return "an END line has no BEGIN line"
    if "does not have a parent component" in text:
        return "a line comes before BEGIN:VCALENDAR"
    return f"its lines cannot be read (an unexpected error: {type(exc).__name__})"


def _warnings(notes: _Notes, caps: Caps) -> tuple[str, ...]:
    out = []
    if notes.broken:
        out.append(f"skipped {len(notes.broken)} broken event(s): {_some(notes.broken, '; ')}")
    out.extend(notes.first_only)
    if notes.over_cap:
        verb = "repeats" if len(notes.over_cap) == 1 else "repeat"
        out.append(
            f"{_some(notes.over_cap, ', ')} {verb} more than {caps.per_event} times in the "
            f"window; the first {caps.per_event} are kept (collect.max_occurrences_per_event)"
        )
    if notes.calendar_full_at:
        out.append(
            f"more than {caps.per_calendar} occurrences in the window: {caps.per_calendar} are "
            f"kept, the rest from {notes.calendar_full_at} on are left out "
            "(collect.max_occurrences_per_calendar)"
        )
    return tuple(out)


def _some(names: list[str], sep: str) -> str:
    shown = sep.join(names[:NAMED_AT_MOST])
    more = len(names) - NAMED_AT_MOST
    return f"{shown}{sep.rstrip()} and {more} more" if more > 0 else shown


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _local(value: date | datetime, zone: ZoneInfo) -> datetime:
    """DTSTART/DTEND as an aware datetime in ``zone`` (dates at midnight, floating times local)."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=zone)
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(zone)
