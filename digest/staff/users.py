"""Staff accounts: argon2id password hashes, lock-out after repeated failures."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError
from sqlalchemy.engine import Connection, Engine, Row

from digest.audience.addresses import email_key
from digest.errors import DigestError
from digest.staff import audit
from digest.store import staff as store

MIN_PASSWORD = 12
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
_HASHER = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Checked when the address is unknown, so a wrong address takes as long as a wrong
    password. Made on first use, not on import (argon2 takes 64 MiB to make it, which every
    `digest send` importing this module paid); the web app makes it as it starts."""
    return _HASHER.hash("no such staff member, only here to spend the same time")


class StaffError(DigestError):
    """A staff account cannot be added, changed or found."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    user_id: int | None
    email: str
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def check_address(address: str) -> str:
    """The address as a staff account's key, or StaffError saying what is wrong with it."""
    try:
        return email_key(address)[1]
    except EmailNotValidError as exc:
        raise StaffError(f"{address!r} is not an email address: {exc}") from None


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise StaffError(
            f"the password is shorter than {MIN_PASSWORD} characters: choose a longer one"
        )


def add_user(engine: Engine, address: str, password: str, *, who: str, now: datetime) -> str:
    """A new staff account, or a new password for an existing one (which also unlocks it)."""
    key = check_address(address)
    check_password(password)
    hashed = _HASHER.hash(password)
    with engine.begin() as conn:
        known = store.find_user(conn, key)
        if known is None:
            store.add_user_row(conn, key, hashed, now)
            audit.record(conn, who=who, action="user added", target=key, now=now)
            return "added"
        store.update_user(conn, known.id, password_hash=hashed, failed_logins=0, locked_until=None)
        store.delete_sessions_of(conn, known.id)
        audit.record(conn, who=who, action="password changed", target=key, now=now)
        return "password changed"


def remove_user(engine: Engine, address: str, *, who: str, now: datetime) -> None:
    key = check_address(address)
    with engine.begin() as conn:
        known = store.find_user(conn, key)
        if known is None:
            raise StaffError(f"no staff account for {key}: see 'digest users list'")
        store.delete_sessions_of(conn, known.id)
        store.delete_user(conn, known.id)
        audit.record(conn, who=who, action="user removed", target=key, now=now)


def list_users(engine: Engine) -> list[Row[Any]]:
    with engine.connect() as conn:
        return store.list_users(conn)


def log_in(engine: Engine, address: str, password: str, *, now: datetime) -> LoginResult:
    """Check a login. Five failures within 15 minutes lock the address for 15 minutes from
    the fifth; a locked account fails even with the right password. A real address and an
    unknown one do the same work (one password hash each, the same failure window) and give
    the same answers, so the form never tells which addresses are staff. Every outcome goes
    to the audit log."""
    try:
        key = check_address(address)
    except StaffError:
        key = address.strip().casefold()[:320]
    with engine.begin() as conn:
        user = store.find_user(conn, key)
        failures = _failures(conn, key, now)
        locked_until = _lock_end(failures)
        usable = user if locked_until is None else None
        right = _verify(usable.password_hash if usable else dummy_hash(), password)
        if locked_until is not None:
            audit.record(conn, who=key, action="login refused", detail="locked", now=now)
            return LoginResult(None, key, locked_until)
        if usable is None or not right:
            return _failed(conn, key, user, len(failures) + 1, now)
        user = usable
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login": now}
        if _HASHER.check_needs_rehash(user.password_hash):
            values["password_hash"] = _HASHER.hash(password)
        store.update_user(conn, user.id, **values)
        audit.record(conn, who=key, action="logged in", now=now)
        return LoginResult(user.id, key)


def _failures(conn: Connection, key: str, now: datetime) -> list[datetime]:
    """The failed logins of ``key`` in the sliding window (since its last fresh start)."""
    fresh = store.last_fresh_start(conn, key)
    return audit.times_of(
        conn, who=key, action="login failed", since=now - LOCK_FOR, after_id=fresh
    )


def _lock_end(failures: list[datetime]) -> datetime | None:
    if len(failures) < MAX_FAILURES:
        return None
    return failures[-MAX_FAILURES] + LOCK_FOR


def _failed(
    conn: Connection, key: str, user: Row[Any] | None, failures: int, now: datetime
) -> LoginResult:
    locked = now + LOCK_FOR if failures >= MAX_FAILURES else None
    if user is not None:  # for 'digest users list'; the window above decides
        store.update_user(conn, user.id, failed_logins=failures, locked_until=locked)
    detail = "wrong password" if user is not None else "unknown address"
    detail += f"; locked until {locked:%H:%M} UTC" if locked else ""
    audit.record(conn, who=key, action="login failed", detail=detail, now=now)
    return LoginResult(None, key, locked)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
