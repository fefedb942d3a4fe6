"""The audit log: who did what to which thing, and when. ``record`` writes in the
transaction of the change it describes; ``log`` writes just after an action that commits on
its own; either way the log never claims what did not happen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from digest import clock
from digest.store.tables import audit_log


def record(
    conn: Connection, *, who: str, action: str, target: str = "", detail: str = "", now: datetime
) -> None:
    conn.execute(
        audit_log.insert().values(
            at=now, who=who[:320], action=action[:60], target=target[:320], detail=detail
        )
    )


def recent(conn: Connection, *, limit: int = 200, target: str | None = None) -> list[Row[Any]]:
    """The newest entries first, optionally only those about one target."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    return list(conn.execute(query))


def times_of(conn: Connection, *, who: str, action: str, since: datetime) -> list[datetime]:
    """When ``who`` did ``action`` since ``since``, oldest first."""
    query = (
        sa.select(audit_log.c.at)
        .where(audit_log.c.who == who, audit_log.c.action == action, audit_log.c.at > since)
        .order_by(audit_log.c.at, audit_log.c.id)
    )
    return list(conn.execute(query).scalars())


def log(engine: Engine, *, who: str, action: str, target: str = "", detail: str = "") -> None:
    """An entry of its own, after an action that ran in its own transactions (the console's)."""
    with engine.begin() as conn:
        record(conn, who=who, action=action, target=target, detail=detail, now=clock.now())
