"""Items and events into an Edition: the week's window, sections, caps, subject, preheader."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy.engine import Engine

from digest.collect.sanitize import cut_at_word
from digest.config import Settings
from digest.curation import apply_choices, item_order, subject_and_preheader
from digest.errors import ConfigError, DigestError
from digest.lifecycle.states import Kind
from digest.models import Edition, Event, Item, ItemKind, Section
from digest.store import choices, content, editions
from digest.store.choices import Choice
from digest.urls import Urls

EVENTS_SECTION = "events"
PREHEADER_CHARS = 140
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, slots=True)
class EditionPlan:
    """Which week an edition covers and the moments that bound it."""

    id: str
    window_start: datetime
    cutoff: datetime
    previous_cutoff: datetime | None


@dataclass(slots=True)
class Assembled:
    edition: Edition | None
    plan: EditionPlan
    unplaced: dict[str, int] = field(default_factory=dict)


# With local delivery the weekly job runs before the first morning anywhere, up to a
# day before the send day: a Monday's edition may be built before its week starts.
BUILD_AHEAD = timedelta(days=2)


def week_id(moment: datetime, settings: Settings) -> str:
    """The ISO week (``2026-W48``) of ``moment`` in the organisation's timezone."""
    year, week, _ = moment.astimezone(settings.organisation.zone).isocalendar()
    return f"{year}-W{week:02d}"


def plan_edition(
    settings: Settings, engine: Engine, week: str | None, now: datetime
) -> EditionPlan:
    """The current week's edition runs until now; a past week's until that week ended."""
    edition_id = week or week_id(now, settings)
    monday = _monday_of(edition_id)
    zone = settings.organisation.zone
    week_start = datetime.combine(monday, time(0), tzinfo=zone)
    week_end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
    ahead = BUILD_AHEAD if settings.schedule.deliver_at_local else timedelta(0)
    if week_start > now + ahead:
        raise DigestError(
            f"week {edition_id} has not started yet: pick this week or an earlier one"
        )
    cutoff = min(now, week_end)
    with engine.connect() as conn:
        previous = editions.previous_cutoff(conn, edition_id, Kind.WEEKLY)
    window_start = cutoff - timedelta(days=settings.edition.window_days)
    return EditionPlan(edition_id, window_start, cutoff, previous)


def _monday_of(edition_id: str) -> date:
    match = _WEEK.match(edition_id)
    if not match:
        raise DigestError(f"--week {edition_id!r} is not an ISO week: write it like 2026-W48")
    try:
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise DigestError(f"--week {edition_id!r} does not exist in that year") from None


def assemble(settings: Settings, engine: Engine, plan: EditionPlan, *, force: bool) -> Assembled:
    """Gather the plan's items and events into an Edition (None when nothing is new)."""
    zone = settings.organisation.zone
    with engine.connect() as conn:
        found = content.items_for_edition(
            conn,
            window_start=plan.window_start,
            cutoff=plan.cutoff,
            previous_cutoff=plan.previous_cutoff,
        )
        upcoming = content.events_between(
            conn,
            plan.cutoff,
            plan.cutoff + timedelta(days=settings.edition.events_ahead_days),
            zone,
        )
        chosen = choices.choices_of(conn, plan.id)
    if not found and not force:
        return Assembled(None, plan)
    found = apply_choices(found, chosen)
    editor_note = next((i for i in found if i.kind == ItemKind.EDITOR_NOTE), None)
    rest = [i for i in found if i.kind != ItemKind.EDITOR_NOTE]
    sections, unplaced = _sections(settings, rest, upcoming, chosen)
    subject, preheader = subject_and_preheader(
        chosen, make_subject(settings, plan, sections), make_preheader(editor_note, sections)
    )
    edition = Edition(
        id=plan.id,
        subject=subject,
        preheader=preheader,
        since=plan.previous_cutoff or plan.window_start,
        cutoff=plan.cutoff,
        editor_note=editor_note,
        sections=tuple(sections),
        archive_url=Urls(settings.delivery.base_url).archive(plan.id),
    )
    return Assembled(edition, plan, unplaced)


def _sections(
    settings: Settings, found: list[Item], upcoming: list[Event], chosen: dict[str, Choice]
) -> tuple[list[Section], dict[str, int]]:
    by_section: dict[str, list[Item]] = defaultdict(list)
    for item in found:
        by_section[item.section].append(item)
    more_url = settings.edition.more_url or settings.organisation.website
    sections = []
    for key in settings.edition.sections:
        cap = settings.edition.cap_for(key)
        title = settings.edition.title_for(key)
        if key == EVENTS_SECTION:
            events = tuple(upcoming)
            section = Section(
                key,
                title,
                events=events[:cap],
                omitted=len(events[cap:]),
                more_url=more_url,
                more_events=events[cap:],
            )
        else:
            ordered = tuple(sorted(by_section.pop(key, []), key=lambda i: item_order(i, chosen)))
            section = Section(
                key,
                title,
                items=ordered[:cap],
                omitted=len(ordered[cap:]),
                more_url=more_url,
                more_items=ordered[cap:],
            )
        if section.count:
            sections.append(section)
    unplaced = {k: len(v) for k, v in by_section.items() if v}
    return sections, unplaced


def make_subject(settings: Settings, plan: EditionPlan, sections: list[Section]) -> str:
    """The subject line from ``edition.subject``'s placeholders."""
    local = (plan.cutoff - timedelta(microseconds=1)).astimezone(settings.organisation.zone)
    top = next((s.items[0].title for s in sections if s.items), "")
    values = {
        "org": settings.organisation.name,
        "date": f"{local.day} {local:%B %Y}",
        "week": plan.id,
        "count": sum(len(s.items) for s in sections),
        "top": top,
    }
    try:
        subject = settings.edition.subject.format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise ConfigError(
            f"edition.subject {settings.edition.subject!r} has a bad placeholder ({exc}): "
            "use {org}, {date}, {week}, {count} or {top}"
        ) from None
    return " ".join(subject.split())


def make_preheader(editor_note: Item | None, sections: list[Section]) -> str:
    """The inbox preview line: the week's first headlines."""
    titles = [i.title for s in sections for i in s.items][:3]
    if editor_note is not None:
        titles.insert(0, editor_note.title)
    if not titles:
        titles = [e.title for s in sections for e in s.events][:3]
    return cut_at_word(" · ".join(titles), PREHEADER_CHARS)
