"""Planning a send in one statement, on SQLite and PostgreSQL: everyone the lists reach
is written once, into a batch of their own variant and zone, never more than the batch
size, and a later plan adds only who joined since."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.audience import actions
from digest.audience.tokens import Keyring
from digest.config import Secrets
from digest.context import App
from digest.dispatch.plan import plan_send
from digest.lifecycle.states import Kind
from digest.store import open_engine
from digest.store.editions import get_edition, save_edition
from digest.store.tables import batches, send_recipients
from tests.conftest import NOW, import_people
from tests.golden_edition import golden_edition

LISTS = """
[[lists]]
slug = "inside"
name = "Inside"
kind = "print"

[schedule]
send = "0 7 * * thu"
deliver_at_local = "07:00"
"""
KEY = "planning-test-secret-key-0123456789"


@pytest.fixture
def planned_app(database_url: str, make_project, tmp_path: Path) -> App:
    project = make_project(LISTS)
    settings = project.settings(database_url=database_url)
    settings.delivery.batch_size = 3
    engine = open_engine(settings.database_url, settings.base_dir)
    weekly = tmp_path / "weekly.csv"
    rows = [f"h{i}@example.org,html," for i in range(7)]
    rows += ["t0@example.org,text,", "t1@example.org,text,"]
    rows += [f"z{i}@example.org,html,Pacific/Honolulu" for i in range(4)]
    rows += ["both@example.org,html,", "gone@example.org,html,"]
    weekly.write_text("email,format,timezone\n" + "\n".join(rows) + "\n")
    import_people(settings, engine, weekly)
    inside = tmp_path / "inside.csv"
    inside.write_text("email,format\nboth@example.org,print\np0@example.org,print\n")
    import_people(settings, engine, inside, list_slug="inside")
    keys = Keyring(b"planning-key-long-enough")
    gone = keys.make("unsubscribe", 15, "weekly", now=NOW)  # gone@ is the 15th imported
    actions.unsubscribe(engine, keys, gone, now=NOW)
    edition = golden_edition()
    with engine.begin() as conn:
        save_edition(conn, edition, _email(), NOW, kind=Kind.WEEKLY)
    return App(settings, engine, Secrets(secret_key=KEY))


def _email():  # type: ignore[no-untyped-def]
    from digest.models import RenderedEmail

    return RenderedEmail("Subject", "<p>hi</p>", "hi")


def _ledger(app: App) -> list[sa.Row]:  # type: ignore[type-arg]
    query = sa.select(
        send_recipients.c.email,
        send_recipients.c.list_slug,
        batches.c.seq,
        batches.c.variant,
        batches.c.zone,
    ).join(batches, batches.c.id == send_recipients.c.batch_id)
    with app.engine.connect() as conn:
        return list(conn.execute(query))


def _plan(app: App, *, dry_run: bool = False):  # type: ignore[no-untyped-def]
    with app.engine.connect() as conn:
        edition = get_edition(conn, golden_edition().id)
    assert edition is not None
    slugs = ["inside", "weekly"]
    return plan_send(app, edition, slugs, transport="outbox", now=NOW, dry_run=dry_run)


def test_everyone_once_in_a_batch_of_their_variant_and_zone(planned_app: App) -> None:
    app = planned_app
    preview = _plan(app, dry_run=True)
    assert _ledger(app) == []
    plan = _plan(app)
    assert (plan.new_recipients, plan.new_batches) == (preview.new_recipients, preview.new_batches)
    rows = _ledger(app)
    emails = [r.email for r in rows]
    assert len(emails) == len(set(emails)) == 15  # gone@ left; both@ once
    assert "gone@example.org" not in emails
    both = next(r for r in rows if r.email == "both@example.org")
    assert (both.list_slug, both.variant) == ("inside", "print:default")  # the first list
    by_batch: dict[int, list[sa.Row]] = defaultdict(list)  # type: ignore[type-arg]
    for row in rows:
        by_batch[row.seq].append(row)
    assert all(len(members) <= 3 for members in by_batch.values())
    assert all(len({(r.variant, r.zone) for r in members}) == 1 for members in by_batch.values())
    kinds = Counter((r.variant, r.zone) for r in rows)
    assert kinds == {
        ("html", "America/New_York"): 7,
        ("html", "Pacific/Honolulu"): 4,
        ("text", "America/New_York"): 2,
        ("print:default", "America/New_York"): 2,
    }
    assert plan.new_batches == len(by_batch) == 3 + 2 + 1 + 1
    assert sorted(by_batch) == list(range(1, len(by_batch) + 1))
    assert plan.new_recipients == {"html": 11, "text": 2, "print:default": 2}


def test_a_later_plan_adds_only_who_joined_since(planned_app: App, tmp_path: Path) -> None:
    app = planned_app
    _plan(app)
    before = {r.email: r.seq for r in _ledger(app)}
    late = tmp_path / "late.csv"
    late.write_text(
        "email,format\nnew0@example.org,html\nnew1@example.org,text\nh0@example.org,html\n"
    )
    import_people(app.settings, app.engine, late)
    again = _plan(app)
    assert again.new_recipients == {"html": 1, "text": 1}
    after = {r.email: r.seq for r in _ledger(app)}
    assert {k: v for k, v in after.items() if k in before} == before
    assert {after["new0@example.org"], after["new1@example.org"]} == {8, 9}
    assert _plan(app).new_recipients == {}
