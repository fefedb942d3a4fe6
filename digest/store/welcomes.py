"""Named queries for the welcome emails: the people already on a list when its welcome
was set up are written into the welcome's ledger as one ``skipped`` batch, so they never
get it (the ledger's states stay pending -> in_flight -> accepted | failed | uncertain
for everyone else; ``skipped`` is never claimed, retried or counted as sent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.chunks import batched
from digest.store import audience, ledger
from digest.store.tables import batches

SKIPPED = "skipped"
CHUNK = 1000


def record_skipped(
    conn: Connection, edition_id: str, list_slug: str, *, reason: str, now: datetime
) -> int:
    """Everyone on ``list_slug`` now (and not in the ledger yet) into one skipped batch;
    how many."""
    batch_id = ledger.add_batch(
        conn, edition_id, ledger.next_seq(conn, edition_id), SKIPPED, SKIPPED, now
    )
    conn.execute(
        sa.update(batches).where(batches.c.id == batch_id).values(state=SKIPPED, reason=reason)
    )
    count, rows = 0, []
    for person in audience.recipients_for(conn, [list_slug]):
        rows.append(
            {
                "edition_id": edition_id,
                "subscriber_id": person.id,
                "batch_id": batch_id,
                "email": person.email,
                "name": person.name,
                "format": person.format,
                "list_slug": list_slug,
            }
        )
        if len(rows) >= CHUNK:
            count += _add_new(conn, edition_id, rows)
            rows = []
    return count + _add_new(conn, edition_id, rows)


def has_newcomers(conn: Connection, edition_id: str, list_slug: str) -> bool:
    """Whether anyone on the list (as a send would reach them) is not in the ledger yet."""
    for chunk in batched(audience.recipients_for(conn, [list_slug]), CHUNK):
        ids = [person.id for person in chunk]
        if len(ledger.known_recipients(conn, edition_id, ids)) < len(ids):
            return True
    return False


def _add_new(conn: Connection, edition_id: str, rows: list[dict[str, Any]]) -> int:
    known = ledger.known_recipients(conn, edition_id, [r["subscriber_id"] for r in rows])
    fresh = [r for r in rows if r["subscriber_id"] not in known]
    ledger.add_recipients(conn, fresh)
    return len(fresh)
