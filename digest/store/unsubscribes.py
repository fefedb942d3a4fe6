"""The queries of one unsubscribe, on the connection's own driver cursor: one read (the
subscriber and all their memberships) and at most three writes (the membership, and when
no list is left the subscriber and their suppression). Through SQLAlchemy's statement
building and result each of them took ten times the CPU of the query itself, and the
one-click unsubscribe POST runs a thousand a second (issue 18)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection, Dialect

from digest.store.audience import UNSUBSCRIBED
from digest.store.sql import on_driver
from digest.store.tables import memberships

READ = (
    "SELECT s.email, s.email_key, s.status, m.list_slug, m.status FROM subscribers s "
    "LEFT OUTER JOIN memberships m ON m.subscriber_id = s.id WHERE s.id = ?"
)
LEAVE = "UPDATE memberships SET status = ?, changed = ? WHERE subscriber_id = ? AND list_slug = ?"
GONE = "UPDATE subscribers SET status = ?, unsubscribed = ? WHERE id = ?"
# Already suppressed (a bounce, a complaint, an earlier unsubscribe): that row stays as it is.
SUPPRESS = (
    "INSERT INTO suppressions (email_key, email, reason, origin, created) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (email_key) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class Leaving:
    """What an unsubscribe reads: the subscriber, and each of their lists' status."""

    email: str
    email_key: str
    status: str
    lists: dict[str, str]


def read(conn: Connection, subscriber_id: int) -> Leaving | None:
    """The subscriber and their memberships in one query; None when we hold nobody by it."""
    rows = on_driver(conn, READ, (subscriber_id,))
    if not rows:
        return None
    email, email_key, status = rows[0][:3]
    return Leaving(email, email_key, status, {r[3]: r[4] for r in rows if r[3] is not None})


def leave_list(conn: Connection, subscriber_id: int, list_slug: str, now: datetime) -> None:
    """One membership unsubscribed, ``changed`` stamped."""
    on_driver(conn, LEAVE, (UNSUBSCRIBED, _time(conn.dialect)(now), subscriber_id, list_slug))


def leave_everything(
    conn: Connection, subscriber_id: int, who: Leaving, *, reason: str, origin: str, now: datetime
) -> None:
    """The subscriber unsubscribed and suppressed (their memberships are left already):
    what ``members.leave_everything`` stores, for someone whose last list this was."""
    stamp = _time(conn.dialect)(now)
    on_driver(conn, GONE, (UNSUBSCRIBED, stamp, subscriber_id))
    on_driver(conn, SUPPRESS, (who.email_key, who.email, reason, origin, stamp))


@lru_cache(maxsize=8)
def _time(dialect: Dialect) -> Callable[[Any], Any]:
    """An aware datetime as the driver takes it, as SQLAlchemy converts it for these columns
    (naive UTC; on SQLite, its DATETIME text with microseconds)."""
    kind = memberships.c.changed.type.dialect_impl(dialect)
    convert: Callable[[Any], Any] | None = kind.bind_processor(dialect)
    return convert or (lambda value: value)
