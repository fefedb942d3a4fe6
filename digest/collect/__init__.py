"""Collect: every source fetched once, new items and upcoming events stored.

The fetcher and the parsers (httpx, icalendar, feedparser, Markdown, YAML: about half a
second to import) load on first use: ``digest build`` imports ``digest.collect.sanitize``,
so this package, and collects nothing. They are this module's attributes all the same
(``digest.collect.parse_feed``), looked up when called, so a test can replace one.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from digest.config import Settings
from digest.config_errors import place
from digest.errors import DigestError, SourceError
from digest.store import content
from digest.store import notes as staff_notes

if TYPE_CHECKING:
    from digest.collect.fetch import Fetched, FetchRequest
    from digest.collect.notes import ParsedNotes

log = logging.getLogger(__name__)
# The parsers, each this module's attribute on first use (tests replace one here).
_LAZY = {"parse_calendar": "calendars", "parse_feed": "feeds", "read_notes": "notes"}


def __getattr__(name: str) -> Any:
    """A parser, imported on first use (see the docstring)."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


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
    noted = _has_notes(settings, engine)
    if not (sources.feeds or sources.calendars or noted):
        raise DigestError(
            "no sources configured: add [[sources.feeds]], [[sources.calendars]] "
            "or [sources.notes] to config.toml"
        )
    from digest.collect.fetch import FetchLimits, fetch_all

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
        if noted:
            outcome = collect_notes(settings, engine, now)
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
    from digest.collect.fetch import FetchRequest

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
    """One fetched source parsed and stored in its own transaction; any failure is its own."""
    request = source.request
    outcome = SourceOutcome(request.key, request.label)
    if isinstance(result, SourceError):
        outcome.error = str(result)
    elif result.not_modified:
        outcome.not_modified = True
    else:
        outcome.error = _stored_or_why(settings, engine, source, result, now, outcome)
        if outcome.error is None:
            return outcome
        outcome.added = outcome.merged = outcome.updated = outcome.upcoming = 0  # rolled back
        outcome.warnings.clear()
    with engine.begin() as conn:
        etag = None if isinstance(result, SourceError) else result.etag
        modified = None if isinstance(result, SourceError) else result.last_modified
        content.record_fetch(
            conn,
            source.state_key,
            request.url,
            now=now,
            etag=etag,
            last_modified=modified,
            error=outcome.error,
        )
    return outcome


def _stored_or_why(
    settings: Settings,
    engine: Engine,
    source: _Planned,
    fetched: Fetched,
    now: datetime,
    outcome: SourceOutcome,
) -> str | None:
    """None when the body was parsed and stored (validators with it), else the error line."""
    request = source.request
    stage = "read"
    try:
        store = _parsed(settings, source, fetched, now, outcome)
        stage = "stored"
        with engine.begin() as conn:
            store(conn)
            content.record_fetch(
                conn,
                source.state_key,
                request.url,
                now=now,
                etag=fetched.etag,
                last_modified=fetched.last_modified,
            )
    except SourceError as exc:
        return f"{request.label}: {exc}: check {request.key}.url in config.toml"
    except Exception as exc:
        if database_broken(exc):
            raise
        log.debug("%s could not be %s", request.label, stage, exc_info=True)
        return f"{request.label}: {unexpected(stage, exc)}: check {request.key}.url in config.toml"
    return None


def database_broken(exc: BaseException) -> bool:
    """True when the database itself failed; a row one source's data made it refuse is not.

    IntegrityError and DataError come from the values stored, and a bare StatementError
    from turning them into parameters; every other database error (cannot connect, locked,
    disk full, a missing table, the pool timed out) stops the run.
    """
    if isinstance(exc, IntegrityError | DataError):
        return False
    if isinstance(exc, DBAPIError):
        return True
    return isinstance(exc, SQLAlchemyError) and not isinstance(exc, StatementError)


def unexpected(stage: str, exc: BaseException) -> str:
    """An exception nobody foresaw, in plain words (the traceback goes to the debug log)."""
    return f"could not be {stage} (an unexpected error: {type(exc).__name__})"


def _parsed(
    settings: Settings, source: _Planned, fetched: Fetched, now: datetime, outcome: SourceOutcome
) -> Callable[[Connection], None]:
    """Parse the body (raising SourceError when nothing can be salvaged); return its storing."""
    if source.kind == "feed":
        return _parsed_feed(settings, source, fetched, now, outcome)
    return _parsed_calendar(settings, source, fetched.body or b"", now, outcome)


def _parsed_feed(
    settings: Settings, source: _Planned, fetched: Fetched, now: datetime, outcome: SourceOutcome
) -> Callable[[Connection], None]:
    from digest.collect import parse_feed

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
    if parsed.warning:
        outcome.warnings.append(_said_of(source, parsed.warning))

    def store(conn: Connection) -> None:
        outcome.updated = content.update_items(conn, parsed.items)
        outcome.added, outcome.merged = content.store_items(conn, parsed.items)

    return store


def _said_of(source: _Planned, warning: str) -> str:
    """A warning about one source, naming it and its place in config.toml."""
    return f"{source.request.label} ({source.request.key}): {warning}"


def _parsed_calendar(
    settings: Settings, source: _Planned, body: bytes, now: datetime, outcome: SourceOutcome
) -> Callable[[Connection], None]:
    """Occurrences from yesterday to beyond the next edition's events window."""
    from digest.collect import parse_calendar
    from digest.collect.calendars import Caps

    start = now - CALENDAR_LOOKBACK
    ahead = settings.edition.events_ahead_days + settings.edition.window_days
    parsed = parse_calendar(
        body,
        source=source.name,
        start=start,
        end=now + timedelta(days=ahead),
        zone=settings.organisation.zone,
        description_chars=settings.collect.summary_chars,
        caps=Caps(
            settings.collect.max_occurrences_per_event,
            settings.collect.max_occurrences_per_calendar,
        ),
    )
    outcome.warnings.extend(_said_of(source, w) for w in parsed.warnings)

    def store(conn: Connection) -> None:
        outcome.added, outcome.upcoming = content.replace_events(
            conn, source.name, parsed.events, from_time=start, now=now
        )

    return store


def _has_notes(settings: Settings, engine: Engine) -> bool:
    """A notes folder is configured, or staff wrote notes in the console."""
    if settings.sources.notes is not None:
        return True
    with engine.connect() as conn:
        return staff_notes.any_notes(conn)


def collect_notes(settings: Settings, engine: Engine, now: datetime) -> SourceOutcome:
    """The notes folder's files and the console's notes, stored in their own transaction;
    any failure is theirs alone. The console calls this when a note is saved."""
    outcome = SourceOutcome("sources.notes", "notes")
    stage = "read"
    try:
        parsed = _read_notes(settings, now)
        stage = "stored"
        with engine.begin() as conn:
            _store_notes(conn, settings, parsed, now, outcome)
    except SourceError as exc:
        outcome.error = str(exc)
    except Exception as exc:
        if database_broken(exc):
            raise
        log.debug("the notes could not be %s", stage, exc_info=True)
        outcome.error = f"notes: {unexpected(stage, exc)}: check sources.notes.dir in config.toml"
        outcome.added = outcome.updated = outcome.removed = 0
        return outcome
    outcome.warnings.extend(parsed.problems)
    return outcome


def _read_notes(settings: Settings, now: datetime) -> ParsedNotes:
    from digest.collect import read_notes
    from digest.collect.notes import ParsedNotes

    if settings.sources.notes is None:
        return ParsedNotes([])
    folder = settings.resolve(settings.sources.notes.dir)
    default_section = next((s for s in settings.edition.sections if s != "events"), "news")
    parsed: ParsedNotes = read_notes(
        folder,
        default_section=default_section,
        zone=settings.organisation.zone,
        now=now,
        summary_chars=settings.collect.summary_chars,
    )
    return parsed


def _store_notes(
    conn: Connection, settings: Settings, parsed: ParsedNotes, now: datetime, outcome: SourceOutcome
) -> None:
    from digest.collect.notes import console_notes

    written = console_notes(conn, now=now, summary_chars=settings.collect.summary_chars)
    every = [*parsed.items, *written]
    due = [note for note in every if note.published <= now]
    for note in every:
        if content.update_note(conn, note):
            outcome.updated += 1
    outcome.added, _ = content.store_items(conn, due)
    keep = parsed.keys | {note.key for note in written}
    outcome.removed = content.remove_notes_except(conn, keep)
