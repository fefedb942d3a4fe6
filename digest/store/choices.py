"""Named queries for staff's choices about one edition (``edition_choices``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.tables import edition_choices as choices

WHOLE = ""  # the item key of the edition's own choices (subject, preheader)


@dataclass(frozen=True, slots=True)
class Choice:
    item_key: str
    left_out: bool = False
    position: int | None = None
    pinned: bool | None = None
    title: str | None = None  # the edition's: its subject
    summary: str | None = None  # the edition's: its preheader


def choices_of(conn: Connection, edition_id: str) -> dict[str, Choice]:
    """Every choice made for ``edition_id``, by item key (``WHOLE`` for the edition)."""
    rows = conn.execute(sa.select(choices).where(choices.c.edition_id == edition_id))
    return {
        r.item_key: Choice(r.item_key, r.left_out, r.position, r.pinned, r.title, r.summary)
        for r in rows
    }


def set_choice(
    conn: Connection, edition_id: str, item_key: str, *, who: str, now: datetime, **values: Any
) -> None:
    """Set some of one item's choices (the others stay as they were)."""
    where = sa.and_(choices.c.edition_id == edition_id, choices.c.item_key == item_key)
    stamp = {"changed_by": who[:320], "changed_at": now}
    done = conn.execute(sa.update(choices).where(where).values(**values, **stamp))
    if done.rowcount == 0:
        conn.execute(
            sa.insert(choices).values(edition_id=edition_id, item_key=item_key, **values, **stamp)
        )
