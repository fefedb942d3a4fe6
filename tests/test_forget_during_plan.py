"""Forgetting someone while a send is being planned: the plan holds its edition until it
commits, and forgetting waits for it, so the rows it wrote for them are erased too. (The
ledger's foreign keys, gone since migration 0019, used to make one side fail instead.)"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from digest.audience.privacy import forget
from digest.config import Secrets
from digest.context import App
from digest.lifecycle.states import Kind
from digest.models import RenderedEmail
from digest.store import editions, open_engine
from digest.store.tables import batches, send_recipients, subscribers
from tests.conftest import NOW, import_people
from tests.golden_edition import golden_edition

KEY = "forget-during-plan-secret-key-0123456789"
ZED = "zed@example.org"


def test_forgetting_waits_for_a_plan_and_erases_what_it_wrote(
    database_url: str,
    make_project,  # type: ignore[no-untyped-def]
) -> None:
    project = make_project("")
    settings = project.settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    people = project.folder / "zed.csv"
    people.write_text(f"email,name\n{ZED},Zed\n")
    assert import_people(settings, engine, people).added == 1
    with engine.begin() as conn:
        built = golden_edition()
        editions.save_edition(conn, built, RenderedEmail("S", "hi", "hi"), NOW, kind=Kind.WEEKLY)
        edition = built.id
        zed = conn.execute(sa.select(subscribers.c.id)).scalar_one()
    app = App(settings, engine, Secrets(secret_key=KEY))

    planning = engine.connect()  # a plan, as dispatch.plan writes one, not committed yet
    planning.begin()
    editions.lock_row(planning, edition)
    batch = planning.execute(
        sa.insert(batches).values(
            edition_id=edition, seq=1, variant="html", transport="outbox", state="pending",
            attempts=0, created=NOW, updated=NOW,
        )
    ).inserted_primary_key[0]  # fmt: skip
    planning.execute(
        sa.insert(send_recipients).values(
            edition_id=edition, subscriber_id=zed, batch_id=batch, email=ZED, name="Zed",
            format="html", list_slug="weekly",
        )
    )  # fmt: skip

    done: list[object] = []
    forgetting = threading.Thread(
        target=lambda: done.append(forget(engine, app.keys, ZED, who="test", now=NOW))
    )
    forgetting.start()
    time.sleep(1.0)
    waited = forgetting.is_alive()
    planning.commit()
    planning.close()
    forgetting.join(30)
    assert waited, "forgetting did not wait for the plan holding its edition"
    assert len(done) == 1
    with engine.connect() as conn:
        left = conn.execute(sa.select(send_recipients.c.email)).scalars().all()
        gone = conn.execute(sa.select(subscribers).where(subscribers.c.id == zed)).all()
    assert left == [] and gone == []  # their waiting row erased, and they are gone
