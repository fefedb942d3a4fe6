"""Named queries for built editions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.models import Attachment, Edition, RenderedEmail
from digest.store.tables import edition_events, edition_files, editions, job_locks

WEEKLY_ID = r"____-W__"


@dataclass(frozen=True, slots=True)
class StoredEdition:
    id: str
    subject: str
    built_at: datetime
    item_count: int
    email: RenderedEmail
    cutoff: datetime


def previous_cutoff(conn: Connection, edition_id: str) -> datetime | None:
    """The cutoff of the latest weekly edition before ``edition_id``."""
    return conn.execute(
        sa.select(sa.func.max(editions.c.cutoff)).where(
            editions.c.id < edition_id, editions.c.id.like(WEEKLY_ID)
        )
    ).scalar()


def save_edition(
    conn: Connection, edition: Edition, email: RenderedEmail, built_at: datetime
) -> None:
    """Store (or replace) an edition with its rendered email."""
    values = {
        "subject": email.subject,
        "since": edition.since,
        "cutoff": edition.cutoff,
        "built_at": built_at,
        "item_count": edition.item_count,
        "edition_json": json.dumps(edition.to_json(), ensure_ascii=False),
        "html": email.html,
        "text": email.text,
    }
    updated = conn.execute(sa.update(editions).where(editions.c.id == edition.id).values(**values))
    if updated.rowcount == 0:
        conn.execute(sa.insert(editions).values(id=edition.id, **values))


def get_edition(conn: Connection, edition_id: str | None) -> StoredEdition | None:
    """One stored edition (or alert) by id, or the most recently built weekly edition."""
    query = sa.select(editions)
    if edition_id is None:
        query = (
            query.where(editions.c.id.like(WEEKLY_ID)).order_by(editions.c.built_at.desc()).limit(1)
        )
    else:
        query = query.where(editions.c.id == edition_id)
    row = conn.execute(query).first()
    if row is None:
        return None
    m = row._mapping
    return StoredEdition(
        m["id"],
        m["subject"],
        m["built_at"],
        m["item_count"],
        RenderedEmail(m["subject"], m["html"], m["text"]),
        m["cutoff"],
    )


def save_files(conn: Connection, edition_id: str, files: list[Attachment]) -> None:
    """Replace the edition's stored files (the print edition of every profile)."""
    conn.execute(sa.delete(edition_files).where(edition_files.c.edition_id == edition_id))
    if files:
        conn.execute(
            sa.insert(edition_files),
            [
                {
                    "edition_id": edition_id,
                    "name": f.filename,
                    "content_type": f.content_type,
                    "data": f.data,
                }
                for f in files
            ],
        )


def get_files(conn: Connection, edition_id: str) -> list[Attachment]:
    query = (
        sa.select(edition_files)
        .where(edition_files.c.edition_id == edition_id)
        .order_by(edition_files.c.name)
    )
    return [Attachment(r.name, r.content_type, bytes(r.data)) for r in conn.execute(query)]


def set_state(
    conn: Connection, edition_id: str, state: str, *, who: str, now: datetime, note: str = ""
) -> None:
    """Record a state change of an edition (also of a week that got no edition), with who."""
    conn.execute(sa.update(editions).where(editions.c.id == edition_id).values(state=state))
    conn.execute(
        sa.insert(edition_events).values(
            edition_id=edition_id, state=state, who=who, at=now, note=note
        )
    )


def state_of(conn: Connection, edition_id: str) -> str | None:
    return conn.execute(sa.select(editions.c.state).where(editions.c.id == edition_id)).scalar()


def history(conn: Connection, edition_id: str | None = None) -> list[Row[Any]]:
    """State changes, newest first (of one edition, or of all)."""
    query = sa.select(edition_events).order_by(
        edition_events.c.at.desc(), edition_events.c.id.desc()
    )
    if edition_id is not None:
        query = query.where(edition_events.c.edition_id == edition_id)
    return list(conn.execute(query))


def listing(conn: Connection) -> list[Row[Any]]:
    """Every edition and alert with its state, newest first."""
    query = sa.select(
        editions.c.id,
        editions.c.subject,
        editions.c.state,
        editions.c.built_at,
        editions.c.item_count,
    ).order_by(editions.c.built_at.desc())
    return list(conn.execute(query))


def awaiting_since(conn: Connection) -> list[tuple[str, datetime]]:
    """Editions waiting for approval, with when they started waiting."""
    query = (
        sa.select(editions.c.id, sa.func.max(edition_events.c.at))
        .join(edition_events, edition_events.c.edition_id == editions.c.id)
        .where(
            editions.c.state == "awaiting_approval", edition_events.c.state == "awaiting_approval"
        )
        .group_by(editions.c.id)
    )
    return [(row[0], row[1]) for row in conn.execute(query)]


def take_lock(conn: Connection, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
    """Hold a named lock until ``until`` (or until released). False when someone else has it."""
    taken = conn.execute(
        sa.update(job_locks)
        .where(
            job_locks.c.name == name, sa.or_(job_locks.c.until < now, job_locks.c.holder == holder)
        )
        .values(holder=holder, until=until)
    ).rowcount
    if taken:
        return True
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(job_locks).values(name=name, holder=holder, until=until))
    except sa.exc.IntegrityError:
        return False
    return True


def release_lock(conn: Connection, name: str, holder: str) -> None:
    conn.execute(sa.delete(job_locks).where(job_locks.c.name == name, job_locks.c.holder == holder))
