"""iCalendar documents into event occurrences in the organisation's timezone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from digest.collect.sanitize import cut_at_word, html_to_text, one_line
from digest.collect.urls import clean_url
from digest.errors import SourceError
from digest.models import Event


@dataclass(frozen=True, slots=True)
class ParsedCalendar:
    events: list[Event]
    warning: str | None = None


def parse_calendar(
    body: bytes,
    *,
    source: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    description_chars: int,
) -> ParsedCalendar:
    """Every occurrence between ``start`` and ``end``; broken events are skipped and counted."""
    try:
        cal = icalendar.Calendar.from_ical(body)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SourceError(f"not a valid iCalendar file ({_short(exc)})") from None
    try:
        occurrences = list(recurring_ical_events.of(cal).between(start, end))
        skipped = 0
    except Exception:
        occurrences, skipped = _per_event(cal, start, end)
    events = []
    for occ in occurrences:
        try:
            event = _to_event(occ, source, zone, description_chars)
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped += 1
            continue
        if event is not None:
            events.append(event)
    warning = f"skipped {skipped} broken event(s)" if skipped else None
    return ParsedCalendar(sorted(events, key=lambda e: (e.start, e.title)), warning)


def _per_event(cal: Any, start: datetime, end: datetime) -> tuple[list[Any], int]:
    """Expand one UID at a time, so one broken event does not hide the good ones."""
    zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
    groups: dict[str, list[Any]] = {}
    for comp in cal.walk("VEVENT"):
        groups.setdefault(str(comp.get("UID", id(comp))), []).append(comp)
    found: list[Any] = []
    skipped = 0
    for comps in groups.values():
        single = icalendar.Calendar()
        for part in [*zones, *comps]:
            single.add_component(part)
        try:
            found.extend(recurring_ical_events.of(single).between(start, end))
        except Exception:
            skipped += 1
    return found, skipped


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
    title = one_line(html_to_text(str(occ.get("SUMMARY", "")))) or "(untitled event)"
    basis = f"{source}\0{uid or title}\0{start.isoformat()}"
    return Event(
        key=hashlib.sha256(basis.encode()).hexdigest()[:40],
        source=source,
        title=title,
        start=start,
        end=finish,
        all_day=all_day,
        location=one_line(html_to_text(str(occ.get("LOCATION", "")))),
        url=clean_url(str(occ["URL"])) if occ.get("URL") else None,
        description=cut_at_word(html_to_text(str(occ.get("DESCRIPTION", ""))), description_chars),
    )


def _local(value: date | datetime, zone: ZoneInfo) -> datetime:
    """DTSTART/DTEND as an aware datetime in ``zone`` (dates at midnight, floating times local)."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=zone)
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(zone)


def _short(exc: Exception) -> str:
    text = one_line(str(exc)).split(": b'", 1)[0]
    return text if len(text) <= 120 else text[:117] + "..."
