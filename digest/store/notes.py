"""Named queries for notes written in the console (``staff_notes``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.store.tables import staff_notes as notes

FIELDS = ("title", "body", "section", "pinned", "editor_note", "published", "author")


def all_notes(conn: Connection) -> list[Row[Any]]:
    """Every console note, the newest publish date first."""
    return list(conn.execute(sa.select(notes).order_by(notes.c.published.desc(), notes.c.id)))


def get_note(conn: Connection, note_id: int) -> Row[Any] | None:
    return conn.execute(sa.select(notes).where(notes.c.id == note_id)).first()


def add_note(conn: Connection, *, who: str, now: datetime, **values: Any) -> int:
    result = conn.execute(
        sa.insert(notes).values(created_by=who[:320], updated=now, **_only(values))
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_note(conn: Connection, note_id: int, *, now: datetime, **values: Any) -> bool:
    done = conn.execute(
        sa.update(notes).where(notes.c.id == note_id).values(updated=now, **_only(values))
    )
    return done.rowcount > 0


def delete_note(conn: Connection, note_id: int) -> bool:
    return conn.execute(sa.delete(notes).where(notes.c.id == note_id)).rowcount > 0


def any_notes(conn: Connection) -> bool:
    return conn.execute(sa.select(notes.c.id).limit(1)).first() is not None


def _only(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a note's field: {sorted(unknown)}")
    return values
