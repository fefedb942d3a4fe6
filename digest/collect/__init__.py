"""Collect: every source fetched once, new items and upcoming events stored."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from digest.collect.calendars import parse_calendar
from digest.collect.feeds import parse_feed
from digest.collect.fetch import Fetched, FetchLimits, FetchRequest, fetch_all
from digest.collect.notes import read_notes
from digest.config import Settings
from digest.config_errors import place
from digest.errors import DigestError, SourceError
from digest.store import content

CALENDAR_LOOKBACK = timedelta(days=1)


@dataclass(slots=True)
class SourceOutcome:
    """What happened to one source in one collect run."""

    key: str
    label: str
    added: int = 0
    merged: int = 0
    updated: int = 0
    removed: int = 0
    upcoming: int = 0  # calendars: occurrences stored for the weeks ahead
    not_modified: bool = False
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class CollectReport:
    outcomes: list[SourceOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if o.error]

    @property
    def all_failed(self) -> bool:
        return bool(self.outcomes) and len(self.failed) == len(self.outcomes)

    @property
    def added(self) -> int:
        return sum(o.added for o in self.outcomes)


def collect(
    settings: Settings,
    engine: Engine,
    now: datetime,
    on_outcome: Callable[[SourceOutcome], None] | None = None,
) -> CollectReport:
    """Fetch every configured source once and store what is new. One run at a time."""
    sources = settings.sources
    if not (sources.feeds or sources.calendars or sources.notes):
        raise DigestError(
            "no sources configured: add [[sources.feeds]], [[sources.calendars]] "
            "or [sources.notes] to config.toml"
        )
    report = CollectReport()
    with _single_run(settings):
        planned = _plan(settings, engine)
        limits = FetchLimits(
            settings.collect.timeout_seconds,
            settings.collect.max_bytes,
            settings.collect.max_redirects,
        )
        requests = [p.request for p in planned]
        results = asyncio.run(fetch_all(requests, limits, settings.base_dir))
        for source, result in zip(planned, results, strict=True):
            outcome = _store_fetched(settings, engine, source, result, now)
            report.outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
        if sources.notes is not None:
            outcome = _collect_notes(settings, engine, now)
            report.outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return report


@contextmanager
def _single_run(settings: Settings) -> Iterator[None]:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    with (settings.var_dir / "collect.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DigestError(
                "another 'digest collect' is running on this folder: wait for it to finish"
            ) from None
        yield


@dataclass(frozen=True, slots=True)
class _Planned:
    kind: str  # "feed" or "calendar"
    index: int  # position in config.toml's list
    name: str
    request: FetchRequest

    @property
    def state_key(self) -> str:
        return f"{self.kind}:{self.name}"


def _plan(settings: Settings, engine: Engine) -> list[_Planned]:
    out = []
    with engine.connect() as conn:
        configured = [
            ("feed", i, f.name, f.url, f.allow_private)
            for i, f in enumerate(settings.sources.feeds)
        ]
        configured += [
            ("calendar", i, c.name, c.url, c.allow_private)
            for i, c in enumerate(settings.sources.calendars)
        ]
        for kind, i, name, url, allow_private in configured:
            state = content.get_fetch_state(conn, f"{kind}:{name}", url)
            if kind == "calendar":
                # Fetched whole every time: its recurring events must be expanded again
                # as the weeks move on, even when the file has not changed.
                state = content.FetchState(None, None)
            request = FetchRequest(
                place(f"sources.{kind}s", i),
                f"{kind} {name!r}",
                url,
                state.etag,
                state.last_modified,
                allow_private,
            )
            out.append(_Planned(kind, i, name, request))
    return out


def _store_fetched(
    settings: Settings,
    engine: Engine,
    source: _Planned,
    result: Fetched | SourceError,
    now: datetime,
) -> SourceOutcome:
    request = source.request
    outcome = SourceOutcome(request.key, request.label)
    with engine.begin() as conn:
        if isinstance(result, SourceError):
            outcome.error = str(result)
        elif result.not_modified:
            outcome.not_modified = True
        else:
            try:
                _store_body(settings, conn, source, result, now, outcome)
            except SourceError as exc:
                outcome.error = f"{request.label}: {exc}: check {request.key}.url in config.toml"
        if isinstance(result, SourceError) or outcome.error:
            content.record_fetch(conn, source.state_key, request.url, now=now, error=outcome.error)
        else:
            content.record_fetch(
                conn,
                source.state_key,
                request.url,
                now=now,
                etag=result.etag,
                last_modified=result.last_modified,
            )
    return outcome


def _store_body(
    settings: Settings,
    conn: Connection,
    source: _Planned,
    fetched: Fetched,
    now: datetime,
    outcome: SourceOutcome,
) -> None:
    assert fetched.body is not None
    if source.kind == "feed":
        warning = _store_feed(settings, conn, source, fetched, now, outcome)
    else:
        warning = _store_calendar(settings, conn, source, fetched.body, now, outcome)
    if warning:
        outcome.warnings.append(f"{source.request.label}: {warning}")


def _store_feed(
    settings: Settings,
    conn: Connection,
    source: _Planned,
    fetched: Fetched,
    now: datetime,
    outcome: SourceOutcome,
) -> str | None:
    feed = settings.sources.feeds[source.index]
    parsed = parse_feed(
        fetched.body or b"",
        source=feed.name,
        section=feed.section,
        url=source.request.url,
        now=now,
        summary_chars=settings.collect.summary_chars,
        content_type=fetched.content_type,
    )
    outcome.added, outcome.merged = content.store_items(conn, parsed.items)
    return parsed.warning


def _store_calendar(
    settings: Settings,
    conn: Connection,
    source: _Planned,
    body: bytes,
    now: datetime,
    outcome: SourceOutcome,
) -> str | None:
    """Occurrences from yesterday to beyond the next edition's events window."""
    start = now - CALENDAR_LOOKBACK
    ahead = settings.edition.events_ahead_days + settings.edition.window_days
    parsed = parse_calendar(
        body,
        source=source.name,
        start=start,
        end=now + timedelta(days=ahead),
        zone=settings.organisation.zone,
        description_chars=settings.collect.summary_chars,
    )
    outcome.added, outcome.upcoming = content.replace_events(
        conn, source.name, parsed.events, from_time=start, now=now
    )
    return parsed.warning


def _collect_notes(settings: Settings, engine: Engine, now: datetime) -> SourceOutcome:
    assert settings.sources.notes is not None
    outcome = SourceOutcome("sources.notes", "notes")
    folder = settings.resolve(settings.sources.notes.dir)
    default_section = next((s for s in settings.edition.sections if s != "events"), "news")
    try:
        parsed = read_notes(
            folder,
            default_section=default_section,
            zone=settings.organisation.zone,
            now=now,
            summary_chars=settings.collect.summary_chars,
        )
    except SourceError as exc:
        outcome.error = str(exc)
        return outcome
    outcome.warnings.extend(parsed.problems)
    due = [note for note in parsed.items if note.published <= now]
    with engine.begin() as conn:
        for note in parsed.items:
            if content.update_note(conn, note):
                outcome.updated += 1
        outcome.added, _ = content.store_items(conn, due)
        outcome.removed = content.remove_notes_except(conn, parsed.keys)
    return outcome
