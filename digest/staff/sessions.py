"""Console sessions: a random token in a cookie, only its SHA-256 in the database, a CSRF
token per session, twelve hours at most."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from digest.store import staff as store

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
        store.delete_expired_sessions(conn, now)
        store.add_session(
            conn,
            _hash(token),
            user_id,
            secrets.token_urlsafe(32),
            now=now,
            expires=now + LIFETIME,
        )
    return token


def find(engine: Engine, token: str | None, *, now: datetime) -> Staff | None:
    if not token or len(token) > 100:
        return None
    with engine.connect() as conn:
        row = store.session_by_hash(conn, _hash(token), now)
    return Staff(row.user_id, row.email, row.csrf) if row is not None else None


def end(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        store.delete_session(conn, _hash(token))
