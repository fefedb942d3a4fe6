"""Named queries for built editions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Attachment, Edition, RenderedEmail
from digest.store.tables import edition_files, editions

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
