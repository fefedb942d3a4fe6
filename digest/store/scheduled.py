"""Named queries for an edition's scheduled mail at the provider: the id its batches are
sent under (SendGrid's ``batch_id``) and whether it was cancelled."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.tables import scheduled_sends

SCHEDULED, CANCELLED = "scheduled", "cancelled"


def schedule_of(conn: Connection, edition_id: str) -> str | None:
    """The id the edition's scheduled batches go under, unless there is none (or it was
    cancelled: nothing more is sent under it)."""
    query = sa.select(scheduled_sends.c.batch_id).where(
        scheduled_sends.c.edition_id == edition_id, scheduled_sends.c.status == SCHEDULED
    )
    found: str | None = conn.execute(query).scalar()
    return found


def status_of(conn: Connection, edition_id: str) -> str | None:
    query = sa.select(scheduled_sends.c.status).where(scheduled_sends.c.edition_id == edition_id)
    found: str | None = conn.execute(query).scalar()
    return found


def record(
    conn: Connection, edition_id: str, *, transport: str, schedule: str, now: datetime
) -> None:
    conn.execute(
        sa.insert(scheduled_sends).values(
            edition_id=edition_id,
            transport=transport,
            batch_id=schedule,
            status=SCHEDULED,
            created=now,
            updated=now,
        )
    )


def mark_cancelled(conn: Connection, edition_id: str, now: datetime) -> None:
    conn.execute(
        sa.update(scheduled_sends)
        .where(scheduled_sends.c.edition_id == edition_id)
        .values(status=CANCELLED, updated=now)
    )
