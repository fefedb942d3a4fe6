"""Named queries for running the service: the backups taken and the heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.tables import backups, heartbeats


@dataclass(frozen=True, slots=True)
class Backup:
    at: datetime
    path: str
    bytes: int
    ok: bool
    detail: str = ""


def record_backup(conn: Connection, backup: Backup) -> None:
    conn.execute(
        sa.insert(backups).values(
            at=backup.at, path=backup.path, bytes=backup.bytes, ok=backup.ok, detail=backup.detail
        )
    )


def last_backup(conn: Connection, *, ok_only: bool = False) -> Backup | None:
    """The latest backup (or the latest that worked)."""
    query = sa.select(backups).order_by(backups.c.at.desc(), backups.c.id.desc()).limit(1)
    if ok_only:
        query = query.where(backups.c.ok)
    row = conn.execute(query).first()
    return None if row is None else Backup(row.at, row.path, row.bytes, row.ok, row.detail)


def beat(conn: Connection, name: str, now: datetime) -> None:
    """Record that ``name`` is alive at ``now``."""
    updated = conn.execute(sa.update(heartbeats).where(heartbeats.c.name == name).values(at=now))
    if updated.rowcount == 0:
        conn.execute(sa.insert(heartbeats).values(name=name, at=now))


def last_beat(conn: Connection, name: str) -> datetime | None:
    at: datetime | None = conn.execute(
        sa.select(heartbeats.c.at).where(heartbeats.c.name == name)
    ).scalar()
    return at
