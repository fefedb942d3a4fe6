"""Console sessions: a random token in a cookie, only its SHA-256 in the database, a CSRF
token per session, twelve hours at most."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.store.tables import staff_sessions, staff_users

LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Staff:
    """The person behind a request to the console."""

    user_id: int
    email: str
    csrf: str

    def csrf_ok(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), given.encode())


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(engine: Engine, user_id: int, *, now: datetime) -> str:
    """A new session; returns the cookie's value. Old expired sessions are cleared."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(staff_sessions.delete().where(staff_sessions.c.expires <= now))
        conn.execute(
            staff_sessions.insert().values(
                token_hash=_hash(token),
                user_id=user_id,
                csrf=secrets.token_urlsafe(32),
                created=now,
                expires=now + LIFETIME,
            )
        )
    return token


def find(engine: Engine, token: str | None, *, now: datetime) -> Staff | None:
    if not token or len(token) > 100:
        return None
    query = (
        sa.select(staff_sessions.c.user_id, staff_sessions.c.csrf, staff_users.c.email)
        .join(staff_users, staff_users.c.id == staff_sessions.c.user_id)
        .where(staff_sessions.c.token_hash == _hash(token), staff_sessions.c.expires > now)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return Staff(row.user_id, row.email, row.csrf) if row is not None else None


def end(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(staff_sessions.delete().where(staff_sessions.c.token_hash == _hash(token)))
