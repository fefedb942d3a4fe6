"""The audit log: who did what to which thing, and when. ``record`` writes in the
transaction of the change it describes; ``log`` writes just after an action that commits on
its own; either way the log never claims what did not happen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine, Row

from digest import clock
from digest.store import staff as store


def record(
    conn: Connection, *, who: str, action: str, target: str = "", detail: str = "", now: datetime
) -> None:
    store.add_audit_entry(
        conn, at=now, who=who[:320], action=action[:60], target=target[:320], detail=detail
    )


def recent(conn: Connection, *, limit: int = 200, target: str | None = None) -> list[Row[Any]]:
    """The newest entries first, optionally only those about one target."""
    return store.audit_entries(conn, limit, target)


def times_of(
    conn: Connection, *, who: str, action: str, since: datetime, after_id: int = 0
) -> list[datetime]:
    """When ``who`` did ``action`` since ``since`` (and after entry ``after_id``), oldest
    first."""
    return store.audit_times(conn, who, action, since, after_id)


def log(engine: Engine, *, who: str, action: str, target: str = "", detail: str = "") -> None:
    """An entry of its own, after an action that ran in its own transactions (the console's)."""
    with engine.begin() as conn:
        record(conn, who=who, action=action, target=target, detail=detail, now=clock.now())
