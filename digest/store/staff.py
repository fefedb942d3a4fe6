"""Named queries for staff accounts, console sessions and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.store.tables import audit_log, staff_sessions, staff_users

# Staff accounts.


def find_user(conn: Connection, key: str) -> Row[Any] | None:
    """The staff account whose address key is ``key``, if there is one."""
    return conn.execute(sa.select(staff_users).where(staff_users.c.email == key)).first()


def add_user_row(conn: Connection, key: str, password_hash: str, now: datetime) -> None:
    """Insert a new staff account with this address key and password hash."""
    conn.execute(staff_users.insert().values(email=key, password_hash=password_hash, created=now))


def update_user(conn: Connection, user_id: int, **values: Any) -> None:
    """Set these columns of one staff account."""
    conn.execute(staff_users.update().where(staff_users.c.id == user_id).values(**values))


def delete_user(conn: Connection, user_id: int) -> None:
    """Delete one staff account (its sessions must be gone first)."""
    conn.execute(staff_users.delete().where(staff_users.c.id == user_id))


def list_users(conn: Connection) -> list[Row[Any]]:
    """Every staff account, by address."""
    return list(conn.execute(sa.select(staff_users).order_by(staff_users.c.email)))


# Console sessions.


def delete_sessions_of(conn: Connection, user_id: int) -> None:
    """End every session of one staff account."""
    conn.execute(staff_sessions.delete().where(staff_sessions.c.user_id == user_id))


def delete_expired_sessions(conn: Connection, now: datetime) -> None:
    """Delete the sessions that have expired by ``now``."""
    conn.execute(staff_sessions.delete().where(staff_sessions.c.expires <= now))


def add_session(
    conn: Connection,
    token_hash: str,
    user_id: int,
    csrf: str,
    *,
    now: datetime,
    expires: datetime,
) -> None:
    """Insert a session of one staff account, known by its token's hash."""
    conn.execute(
        staff_sessions.insert().values(
            token_hash=token_hash, user_id=user_id, csrf=csrf, created=now, expires=expires
        )
    )


def session_by_hash(conn: Connection, token_hash: str, now: datetime) -> Row[Any] | None:
    """The unexpired session with this token hash (user_id, csrf, email), if there is one."""
    query: sa.Select[Any] = (
        sa.select(staff_sessions.c.user_id, staff_sessions.c.csrf, staff_users.c.email)
        .join(staff_users, staff_users.c.id == staff_sessions.c.user_id)
        .where(staff_sessions.c.token_hash == token_hash, staff_sessions.c.expires > now)
    )
    return conn.execute(query).first()


def delete_session(conn: Connection, token_hash: str) -> None:
    """Delete the session with this token hash."""
    conn.execute(staff_sessions.delete().where(staff_sessions.c.token_hash == token_hash))


# The audit log.


def add_audit_entry(
    conn: Connection, *, at: datetime, who: str, action: str, target: str, detail: str
) -> None:
    """Insert one audit log entry."""
    conn.execute(
        audit_log.insert().values(at=at, who=who, action=action, target=target, detail=detail)
    )


def audit_entries(conn: Connection, limit: int, target: str | None) -> list[Row[Any]]:
    """At most ``limit`` audit entries, newest first, only about ``target`` unless None."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    return list(conn.execute(query))


def last_fresh_start(conn: Connection, key: str) -> int:
    """The audit entry of ``key``'s last login or new password (0 for none): failures
    before it are forgiven."""
    query = sa.select(sa.func.max(audit_log.c.id)).where(
        sa.or_(
            sa.and_(audit_log.c.who == key, audit_log.c.action == "logged in"),
            sa.and_(
                audit_log.c.target == key,
                audit_log.c.action.in_(("user added", "password changed")),
            ),
        )
    )
    return int(conn.execute(query).scalar() or 0)


def audit_times(
    conn: Connection, who: str, action: str, since: datetime, after_id: int = 0
) -> list[datetime]:
    """When ``who`` did ``action`` after ``since`` (and after entry ``after_id``), oldest
    first."""
    query = (
        sa.select(audit_log.c.at)
        .where(audit_log.c.who == who, audit_log.c.action == action, audit_log.c.at > since)
        .where(audit_log.c.id > after_id)
        .order_by(audit_log.c.at, audit_log.c.id)
    )
    return list(conn.execute(query).scalars())
