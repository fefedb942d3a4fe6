"""A batch's recipients come back in subscriber order whatever order the plan wrote them
in: the order of a batch's personalizations, so the request for a batch is the same."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import sqlalchemy as sa

from digest.lifecycle.states import Kind
from digest.models import RenderedEmail
from digest.store import ledger, open_engine
from digest.store.editions import save_edition
from digest.store.tables import send_recipients
from tests.golden_edition import golden_edition

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_batch_reads_in_subscriber_order_as_order_by_gives(make_project, database_url) -> None:
    settings = make_project("").settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    edition = golden_edition()
    ids = list(range(1, 301))
    random.Random(18).shuffle(ids)
    with engine.begin() as conn:
        save_edition(conn, edition, RenderedEmail("S", "<p>hi</p>", "hi"), NOW, kind=Kind.WEEKLY)
        first = ledger.add_batch(conn, edition.id, 1, "html", "sendgrid", NOW)
        second = ledger.add_batch(conn, edition.id, 2, "text", "sendgrid", NOW)
        rows = [
            {
                "edition_id": edition.id,
                "subscriber_id": i,
                "batch_id": first if i % 3 else second,
                "email": f"p{i}@example.org",
                "name": f"Person {i}",
                "format": "html" if i % 3 else "text",
                "list_slug": "weekly",
            }
            for i in ids
        ]
        for part in (rows[:100], rows[100:200], rows[200:]):  # written in three orders
            ledger.add_recipients(conn, part)
    with engine.connect() as conn:
        for batch in (first, second):
            got = ledger.batch_recipients(conn, batch)
            query = (
                sa.select(
                    send_recipients.c.subscriber_id,
                    send_recipients.c.email,
                    send_recipients.c.name,
                    send_recipients.c.list_slug,
                )
                .where(send_recipients.c.batch_id == batch)
                .order_by(send_recipients.c.subscriber_id)
            )
            assert got == [tuple(row) for row in conn.execute(query)]
            assert [row[0] for row in got] == sorted(
                i for i in ids if (i % 3 != 0) == (batch == first)
            )
