"""Named queries for sign-up requests: what each confirmation confirms, and its queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.tables import signup_requests as requests


@dataclass(frozen=True, slots=True)
class SignupRow:
    id: int
    subscriber_id: int
    lists: tuple[str, ...]
    format: str
    profile: str | None
    created: datetime
    sent: datetime | None
    attempts: int
    confirmed: datetime | None


def add_request(
    conn: Connection,
    subscriber_id: int,
    lists: Sequence[str],
    fmt: str,
    profile: str | None,
    now: datetime,
) -> int:
    """A new request; one with no lists (nothing new to confirm) is never sent."""
    result = conn.execute(
        requests.insert().values(
            subscriber_id=subscriber_id,
            lists=" ".join(lists),
            format=fmt,
            profile=profile,
            created=now,
            sent=None if lists else now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def get_request(conn: Connection, request_id: int) -> SignupRow | None:
    row = conn.execute(sa.select(requests).where(requests.c.id == request_id)).first()
    if row is None:
        return None
    return SignupRow(
        row.id,
        row.subscriber_id,
        tuple(row.lists.split()),
        row.format,
        row.profile,
        row.created,
        row.sent,
        row.attempts,
        row.confirmed,
    )


def due_requests(conn: Connection, now: datetime, *, max_age: timedelta, tries: int) -> list[int]:
    """Requests whose email has not gone yet, young enough to be confirmed, not given up."""
    query = (
        sa.select(requests.c.id)
        .where(requests.c.sent.is_(None))
        .where(requests.c.created > now - max_age)
        .where(requests.c.attempts < tries)
        .where(sa.or_(requests.c.next_try.is_(None), requests.c.next_try <= now))
        .order_by(requests.c.id)
    )
    return list(conn.execute(query).scalars())


def claim_request(conn: Connection, request_id: int, now: datetime, *, hold: timedelta) -> bool:
    """Take one request to send; False when another worker has it or it has gone."""
    result = conn.execute(
        requests.update()
        .where(requests.c.id == request_id)
        .where(requests.c.sent.is_(None))
        .where(sa.or_(requests.c.next_try.is_(None), requests.c.next_try <= now))
        .values(attempts=requests.c.attempts + 1, next_try=now + hold)
    )
    return result.rowcount == 1


def mark_sent(conn: Connection, request_id: int, now: datetime) -> None:
    conn.execute(
        requests.update()
        .where(requests.c.id == request_id)
        .values(sent=now, next_try=None, last_error=None)
    )


def mark_failed(conn: Connection, request_id: int, reason: str, retry_at: datetime) -> None:
    conn.execute(
        requests.update()
        .where(requests.c.id == request_id)
        .values(last_error=reason[:500], next_try=retry_at)
    )


def mark_confirmed(conn: Connection, request_id: int, now: datetime) -> None:
    conn.execute(requests.update().where(requests.c.id == request_id).values(confirmed=now))


def waiting(conn: Connection, now: datetime, *, max_age: timedelta) -> tuple[int, str | None]:
    """How many confirmation emails have not gone yet (young enough to be confirmed), and
    the newest reason one of them failed."""
    unsent = sa.and_(requests.c.sent.is_(None), requests.c.created > now - max_age)
    count = conn.execute(sa.select(sa.func.count()).select_from(requests).where(unsent))
    reason = conn.execute(
        sa.select(requests.c.last_error)
        .where(unsent, requests.c.last_error.is_not(None))
        .order_by(requests.c.id.desc())
        .limit(1)
    )
    return int(count.scalar_one()), reason.scalar()
