"""Is the service well? What ``GET /healthz`` answers a monitor: the database answers,
the scheduler is running, how old the last collect and the last backup are, and the
state of the latest edition. No personal data: counts, times and states only.

Each rule that fails is one plain reason; any reason makes the answer 503.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from digest.context import App
from digest.lifecycle.states import Kind, State
from digest.schedule import SCHEDULER_BEAT
from digest.store import content, editions, operations

COLLECT_AT_MOST = timedelta(days=2)
BACKUP_AT_MOST = timedelta(days=2)
SQLITE_HEADER = b"SQLite format 3\x00"
BEAT_AT_MOST = timedelta(minutes=3)  # the scheduler beats every minute


@dataclass(slots=True)
class Health:
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "unwell", "problems": self.problems} | self.facts


def health(app: App) -> Health:
    """Every rule, each on its own: one broken part never hides another."""
    now = app.clock()
    report = Health()
    why = database_problem(app)
    report.facts["database"] = "ok" if why is None else "not answering"
    if why is not None:
        report.problems.append(why)
        return report  # everything else is read from it
    with app.engine.connect() as conn:
        beat = operations.last_beat(conn, SCHEDULER_BEAT)
        collected = content.last_collect(conn)
        backup = operations.last_backup(conn)
        good_backup = operations.last_backup(conn, ok_only=True)
        latest = editions.latest_state(conn, Kind.WEEKLY)
    _scheduler(report, beat, now)
    _collect(report, collected, now)
    _backup(report, backup, good_backup, now)
    _latest_edition(report, *(latest or (None, None)))
    return report


def database_problem(app: App) -> str | None:
    """Why the database does not answer, or None. A SQLite file is looked at afresh (never
    created): a file gone, unreadable or no longer a database is seen at once, though the
    pool's open connections would go on reading what they hold."""
    try:
        url = make_url(app.settings.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            path = Path(url.database)
            path = path if path.is_absolute() else app.settings.base_dir / path
            if (why := _sqlite_file_problem(path)) is not None:
                return f"the database does not answer ({why})"
        with app.engine.connect() as conn:
            conn.execute(sa.text("SELECT count(*) FROM editions"))
    except (sqlite3.Error, sa.exc.SQLAlchemyError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"the database does not answer ({first[:200]})"
    return None


def _sqlite_file_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"{path} is gone"
    with path.open("rb") as fh:  # an unreadable file raises here
        if fh.read(16) != SQLITE_HEADER:
            return f"{path} is not a SQLite database any more"
    with sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5) as raw:
        raw.execute("SELECT count(*) FROM editions").fetchone()
    raw.close()
    return None


def _age(then: datetime | None, now: datetime) -> dict[str, Any]:
    if then is None:
        return {"at": None, "age_seconds": None}
    return {
        "at": then.isoformat(timespec="seconds"),
        "age_seconds": int((now - then).total_seconds()),
    }


def _scheduler(report: Health, beat: datetime | None, now: datetime) -> None:
    report.facts["scheduler"] = _age(beat, now)
    if beat is None:
        report.problems.append("the scheduler has never run: is 'digest serve' running?")
    elif now - beat > BEAT_AT_MOST:
        minutes = int((now - beat).total_seconds() // 60)
        report.problems.append(f"the scheduler has not run for {minutes} minutes")


def _collect(report: Health, collected: datetime | None, now: datetime) -> None:
    report.facts["last_collect"] = _age(collected, now)
    if collected is not None and now - collected > COLLECT_AT_MOST:
        hours = int((now - collected).total_seconds() // 3600)
        report.problems.append(
            f"the last collect was {hours} hours ago (more than {COLLECT_AT_MOST.days} days)"
        )


def _backup(
    report: Health,
    backup: operations.Backup | None,
    good: operations.Backup | None,
    now: datetime,
) -> None:
    report.facts["last_backup"] = _age(good.at if good else None, now)
    if backup is not None and not backup.ok:
        report.problems.append("the last backup failed: see 'digest backup'")
    elif good is not None and now - good.at > BACKUP_AT_MOST:
        hours = int((now - good.at).total_seconds() // 3600)
        report.problems.append(
            f"the last backup was {hours} hours ago (more than {BACKUP_AT_MOST.days} days)"
        )


def _latest_edition(report: Health, edition_id: str | None, state: str | None) -> None:
    report.facts["latest_edition"] = {"id": edition_id, "state": state}
    if state == State.FAILED:
        report.problems.append(f"edition {edition_id} failed: see 'digest status {edition_id}'")
