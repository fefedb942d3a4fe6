"""Named queries for SendGrid's delivery events and the numbers of a sent edition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.store.tables import batches, delivery_events, memberships, send_recipients

# Delivery events.


def seen_event_ids(conn: Connection, ids: Sequence[str]) -> set[str]:
    """Which of these SendGrid event ids are stored already."""
    query = sa.select(delivery_events.c.sg_event_id).where(delivery_events.c.sg_event_id.in_(ids))
    return set(conn.execute(query).scalars())


def add_event(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert one delivery event: its columns by name (``raw`` is its payload as JSON text)."""
    conn.execute(sa.insert(delivery_events).values(**row))


def events_for_address(conn: Connection, email: str, limit: int) -> list[Row[Any]]:
    """Kind, edition and time of the events about one address (any case), newest first."""
    query = (
        sa.select(delivery_events.c.kind, delivery_events.c.edition_id, delivery_events.c.at)
        .where(sa.func.lower(delivery_events.c.email) == email.casefold())
        .order_by(delivery_events.c.at.desc())
        .limit(limit)
    )
    return list(conn.execute(query))


# The numbers of an edition.


def people_by_kind(conn: Connection, edition_id: str) -> dict[str, int]:
    """How many distinct addresses had each kind of event for this edition."""
    rows = conn.execute(
        sa.select(delivery_events.c.kind, sa.func.count(sa.distinct(delivery_events.c.email)))
        .where(delivery_events.c.edition_id == edition_id)
        .group_by(delivery_events.c.kind)
    )
    return {kind: int(count) for kind, count in rows}


def accepted_recipients(conn: Connection, edition_id: str) -> int:
    """How many of this edition's recipients are in batches SendGrid accepted."""
    accepted = conn.execute(
        sa.select(sa.func.count())
        .select_from(send_recipients.join(batches, batches.c.id == send_recipients.c.batch_id))
        .where(send_recipients.c.edition_id == edition_id, batches.c.state == "accepted")
    ).scalar()
    return int(accepted or 0)


def first_accepted(conn: Connection, edition_id: str) -> datetime | None:
    """When SendGrid first accepted a batch of this edition, if ever."""
    started: datetime | None = conn.execute(
        sa.select(sa.func.min(batches.c.accepted_at)).where(batches.c.edition_id == edition_id)
    ).scalar()
    return started


def next_send_after(conn: Connection, edition_id: str, started: datetime) -> datetime | None:
    """When the first batch of another edition was created after ``started``, if ever."""
    later: datetime | None = conn.execute(
        sa.select(sa.func.min(batches.c.created)).where(
            batches.c.created > started, batches.c.edition_id != edition_id
        )
    ).scalar()
    return later


def unsubscribed_recipients(
    conn: Connection, edition_id: str, since: datetime, before: datetime | None
) -> int:
    """How many of this edition's recipients left the list it went to at or after ``since``
    (and before ``before``, unless None)."""
    left = sa.and_(
        memberships.c.subscriber_id == send_recipients.c.subscriber_id,
        memberships.c.list_slug == send_recipients.c.list_slug,
    )
    query = (
        sa.select(sa.func.count())
        .select_from(send_recipients.join(memberships, left))
        .where(
            send_recipients.c.edition_id == edition_id,
            memberships.c.status == "unsubscribed",
            memberships.c.changed >= since,
        )
    )
    if before is not None:
        query = query.where(memberships.c.changed < before)
    return int(conn.execute(query).scalar() or 0)
