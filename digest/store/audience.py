"""Named queries for subscribers, lists and memberships."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.config import ListSettings
from digest.models import Recipient
from digest.store.tables import deliveries, lists, memberships, subscribers

ACTIVE = "active"


def sync_lists(conn: Connection, configured: Iterable[ListSettings]) -> None:
    """Make the lists table match config.toml's [[lists]] (lists are never deleted here)."""
    for item in configured:
        values = {"name": item.name, "kind": item.kind, "description": item.description}
        updated = conn.execute(sa.update(lists).where(lists.c.slug == item.slug).values(**values))
        if updated.rowcount == 0:
            conn.execute(sa.insert(lists).values(slug=item.slug, **values))


def find_subscriber(conn: Connection, email_key: str) -> sa.Row[tuple[object, ...]] | None:
    return conn.execute(sa.select(subscribers).where(subscribers.c.email_key == email_key)).first()


def add_subscriber(
    conn: Connection,
    *,
    email: str,
    email_key: str,
    name: str,
    status: str,
    fmt: str,
    source: str,
    now: datetime,
) -> int:
    result = conn.execute(
        sa.insert(subscribers).values(
            email=email,
            email_key=email_key,
            name=name,
            status=status,
            format=fmt,
            source=source,
            created=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_subscriber(conn: Connection, subscriber_id: int, **values: object) -> None:
    conn.execute(sa.update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))


def ensure_membership(
    conn: Connection, subscriber_id: int, list_slug: str, status: str, now: datetime
) -> bool:
    """Put a subscriber on a list. True when they were not on it before."""
    exists = conn.execute(
        sa.select(memberships.c.status).where(
            memberships.c.subscriber_id == subscriber_id, memberships.c.list_slug == list_slug
        )
    ).first()
    if exists:
        return False
    conn.execute(
        sa.insert(memberships).values(
            subscriber_id=subscriber_id, list_slug=list_slug, status=status, created=now
        )
    )
    return True


def recipients_for(conn: Connection, list_slugs: list[str]) -> Iterator[Recipient]:
    """Active subscribers with an active membership of any of the lists, each once, by id."""
    query = (
        sa.select(
            subscribers.c.id,
            subscribers.c.email,
            subscribers.c.name,
            subscribers.c.format,
            sa.func.min(memberships.c.list_slug).label("list_slug"),
        )
        .join(memberships, memberships.c.subscriber_id == subscribers.c.id)
        .where(
            memberships.c.list_slug.in_(list_slugs),
            memberships.c.status == ACTIVE,
            subscribers.c.status == ACTIVE,
        )
        .group_by(subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.format)
        .order_by(subscribers.c.id)
    )
    for row in conn.execute(query):
        yield Recipient(row.id, row.email, row.name, row.format, (row.list_slug,))


def delivered_ids(conn: Connection, edition_id: str) -> set[int]:
    return set(
        conn.execute(
            sa.select(deliveries.c.subscriber_id).where(deliveries.c.edition_id == edition_id)
        ).scalars()
    )


def record_delivery(
    conn: Connection,
    edition_id: str,
    subscriber_id: int,
    *,
    transport: str,
    message_id: str,
    now: datetime,
) -> None:
    conn.execute(
        sa.insert(deliveries).values(
            edition_id=edition_id,
            subscriber_id=subscriber_id,
            transport=transport,
            message_id=message_id,
            delivered_at=now,
        )
    )
