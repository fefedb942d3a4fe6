"""The occurrences of one event (one UID) in a window, found lazily and never more than a cap.

``recurring_ical_events.of(cal).between()`` builds every occurrence of the window at once
(a SECONDLY rule makes 86,400 a day), and dateutil walks every date from DTSTART on. So
each series is asked for short spans of the window in turn (``Series.between`` is a
generator), taking occurrences until the window ends or the cap is reached; a dense rule
whose DTSTART lies far before the window is moved forward by whole periods first.
Written against recurring_ical_events 3.8 (``of(cal).series``, ``Series.between``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import islice
from typing import Any

import icalendar
import recurring_ical_events

# Seconds in one period of each frequency (months and years at their shortest).
_PERIOD = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
_FIXED_LENGTH = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY")
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")
_MOST_DAYS = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
# Dates dateutil may walk through before the window: beyond the first, DTSTART is moved
# forward (when the rule allows it); beyond the second the rule is not used at all.
_MOVE_FORWARD_AFTER = 1_000
_TOO_MANY_DATES = 200_000
_SHORTEST_SPAN = timedelta(minutes=1)
_CLOCK_CHANGES = timedelta(hours=3)  # wall-clock and elapsed time differ by less


class RuleUnusable(Exception):
    """The repeat rule of an event cannot be read or worked out; the words say why."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    zone: tzinfo  # where floating times are


def occurrences(comps: list[Any], zones: list[Any], window: Window, limit: int) -> list[Any]:
    """At most ``limit`` occurrences of one UID's components in the window, soonest first."""
    comps, first_span = _prepared(comps, window, limit)
    single = icalendar.Calendar()
    for part in [*zones, *comps]:
        single.add_component(part)
    found: list[Any] = []
    for series in recurring_ical_events.of(single).series:
        found.extend(_timeline(series, window, first_span, limit - len(found)))
    return found


def without_rules(comps: list[Any]) -> list[Any]:
    """The components with no RRULE or EXRULE: a series shown by its first date only."""
    bare = []
    for comp in comps:
        copy = comp.copy()
        copy.pop("RRULE", None)
        copy.pop("EXRULE", None)
        bare.append(copy)
    return bare


def has_rules(comps: list[Any]) -> bool:
    return any("RRULE" in comp for comp in comps)


def _timeline(series: Any, window: Window, first_span: timedelta, limit: int) -> Iterator[Any]:
    """At most ``limit`` of the series' occurrences overlapping the window, span by span."""
    seen: set[Any] = set()
    span, longest = first_span, first_span * 16
    low = window.start
    while low < window.end and len(seen) < limit:
        high = min(low + span, window.end)
        fresh = (o for o in series.between(low, high) if o.id not in seen)
        for occurrence in sorted(islice(fresh, limit - len(seen))):
            seen.add(occurrence.id)
            yield occurrence
        span, low = min(span * 2, longest), high


def _prepared(comps: list[Any], window: Window, limit: int) -> tuple[list[Any], timedelta]:
    """The components (a dense core moved forward) and a first span of about ``limit`` dates."""
    length = window.end - window.start
    cores = [c for c in comps if "RECURRENCE-ID" not in c and "RRULE" in c]
    if not cores:
        return comps, length
    core = cores[0]
    rules = _rules(core)
    per_day = sum(_per_day(rule) for rule in rules)
    before = (window.start - _aware(core["DTSTART"].dt, window.zone)) / timedelta(days=1)
    if before * per_day > _MOVE_FORWARD_AFTER:
        moved = _moved_forward(core, rules, window)
        if moved is None and before * per_day > _TOO_MANY_DATES:
            raise RuleUnusable("has a repeat rule that makes too many dates to work out")
        comps = [moved if c is core and moved is not None else c for c in comps]
    span = timedelta(days=limit / per_day) if per_day else length
    return comps, min(max(span, _SHORTEST_SPAN), length)


def _rules(core: Any) -> list[Any]:
    value = core["RRULE"]
    rules = value if isinstance(value, list) else [value]
    for rule in rules:
        shown = f"has a repeat rule (RRULE) {_clip(str(rule))!r}"
        if isinstance(rule, icalendar.vBroken) or not isinstance(rule, icalendar.vRecur):
            raise RuleUnusable(f"{shown} that cannot be read")
        if rule.get("FREQ", [""])[0] not in _PERIOD:
            raise RuleUnusable(f"{shown} without a FREQ")
    return rules


def _per_day(rule: Any) -> float:
    """At most how many dates a day the rule makes (BY parts finer than FREQ multiply it)."""
    freq = rule["FREQ"][0]
    period = _PERIOD[freq] * _interval(rule)
    dates = 86400 / period
    level = _PERIOD[freq]
    for part, finer_than in (("BYSECOND", 1), ("BYMINUTE", 60), ("BYHOUR", 3600)):
        if level > finer_than and rule.get(part):
            dates *= len(rule[part])
    if freq in _MOST_DAYS and any(rule.get(part) for part in _DAY_PARTS):
        dates *= _MOST_DAYS[freq]  # as if every day of the week, month or year
    elif freq == "YEARLY" and rule.get("BYMONTH"):
        dates *= len(rule["BYMONTH"])
    return dates


def _interval(rule: Any) -> int:
    try:
        return max(1, int(rule.get("INTERVAL", [1])[0]))
    except (TypeError, ValueError):
        return 1


def _moved_forward(core: Any, rules: list[Any], window: Window) -> Any | None:
    """A copy of ``core`` starting a whole number of periods later, just before the window.

    Only for rules without COUNT and with periods of fixed length: the BY parts are
    absolute, so the same dates come out. The new DTSTART (always an occurrence) and the
    old one both end before the window, with room for a change of clocks.
    """
    if any("COUNT" in rule or rule["FREQ"][0] not in _FIXED_LENGTH for rule in rules):
        return None
    step = timedelta(seconds=math.lcm(*(_PERIOD[r["FREQ"][0]] * _interval(r) for r in rules)))
    start = core["DTSTART"].dt
    timed = isinstance(start, datetime)
    if not timed and step % timedelta(days=1):
        return None
    duration = _duration(core)
    target = window.start - duration - _CLOCK_CHANGES - step
    zone = start.tzinfo if timed and start.tzinfo else window.zone
    local_target = target.astimezone(zone).replace(tzinfo=None)
    naive = start.replace(tzinfo=None) if timed else datetime.combine(start, time(0))
    periods = (local_target - naive) // step
    if periods <= 0:
        return None
    later = naive + periods * step
    new_start: date | datetime = later.replace(tzinfo=start.tzinfo) if timed else later.date()
    moved = core.copy()
    moved["DTSTART"] = icalendar.vDDDTypes(new_start)
    moved["DTSTART"].params.update(core["DTSTART"].params)
    if "DTEND" in core:
        moved["DTEND"] = icalendar.vDDDTypes(new_start + duration)
        moved["DTEND"].params.update(core["DTEND"].params)
    return moved


def _duration(core: Any) -> timedelta:
    if "DTEND" in core:
        end, start = core["DTEND"].dt, core["DTSTART"].dt
        if type(end) is type(start):
            length: timedelta = end - start
            return max(length, timedelta(0))
    given = core["DURATION"].dt if "DURATION" in core else None
    return max(given, timedelta(0)) if isinstance(given, timedelta) else timedelta(0)


def _aware(value: date | datetime, zone: tzinfo) -> datetime:
    """``value`` as an aware datetime (dates at midnight, floating times in ``zone``)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
