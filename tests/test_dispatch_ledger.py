"""The ledger's batches added many in one statement are the rows one at a time made."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from digest.lifecycle.states import Kind
from digest.models import RenderedEmail
from digest.store import ledger, open_engine
from digest.store.editions import save_edition
from digest.store.tables import batches
from tests.golden_edition import golden_edition

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
AT = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def _rows(conn: sa.Connection, edition_id: str) -> list[tuple[object, ...]]:
    columns = [c for c in batches.c if c.name != "id"]
    query = sa.select(*columns).where(batches.c.edition_id == edition_id)
    return [tuple(row) for row in conn.execute(query.order_by(batches.c.seq))]


def test_add_batches_makes_the_rows_add_batch_makes(make_project, database_url) -> None:
    settings = make_project("").settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    edition = golden_edition()
    with engine.begin() as conn:
        save_edition(conn, edition, RenderedEmail("S", "<p>hi</p>", "hi"), NOW, kind=Kind.WEEKLY)
        for seq in range(1, 4):
            ledger.add_batch(conn, edition.id, seq, "html", "sendgrid", NOW)
        for seq in range(4, 6):
            ledger.add_batch(
                conn, edition.id, seq, "text", "sendgrid", NOW, zone="Asia/Tokyo", deliver_at=AT
            )
        one_by_one = _rows(conn, edition.id)
        conn.execute(sa.delete(batches))
        ledger.add_batches(conn, edition.id, 1, 3, "html", "sendgrid", NOW)
        ledger.add_batches(conn, edition.id, 6, 0, "html", "sendgrid", NOW)  # none
        ledger.add_batches(
            conn, edition.id, 4, 2, "text", "sendgrid", NOW, zone="Asia/Tokyo", deliver_at=AT
        )
        together = _rows(conn, edition.id)
    engine.dispose()
    assert together == one_by_one
    assert [row[1] for row in together] == [1, 2, 3, 4, 5]
