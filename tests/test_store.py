"""The store on both databases it supports: SQLite and PostgreSQL (make test starts one)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from digest.audience import actions
from digest.audience.export import export_csv
from digest.audience.tokens import Keyring
from digest.build import build
from digest.collect import collect
from digest.context import App
from digest.store import open_engine
from digest.store.db import MIGRATIONS, sqlite_url_for
from digest.store.tables import items, memberships, subscribers
from tests.conftest import EXAMPLE_SOURCES as SOURCES
from tests.conftest import NOW, import_people


def _alembic(url: str, base: Path, revision: str) -> None:
    engine = sa.create_engine(sqlite_url_for(url, base))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_upgrading_from_the_first_schema_keeps_every_subscriber(
    database_url, empty_database, tmp_path
) -> None:
    _alembic(database_url, tmp_path, "0001")
    raw = sa.create_engine(sqlite_url_for(database_url, tmp_path))
    with raw.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO lists (slug, name, kind, description)"
                " VALUES ('weekly', 'W', 'digest', '')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO subscribers"
                " (id, email, email_key, name, status, format, source, created)"
                " VALUES (1, 'T@example.org', 't@example.org', 'Tee', 'active', 'text', 'import',"
                " '2026-01-02 03:04:05')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO memberships (subscriber_id, list_slug, status, created)"
                " VALUES (1, 'weekly', 'active', '2026-01-02 03:04:05')"
            )
        )
    raw.dispose()
    engine = open_engine(database_url, tmp_path)
    with engine.connect() as conn:
        sub = conn.execute(sa.select(subscribers)).one()
        member = conn.execute(sa.select(memberships)).one()
    assert (sub.email, sub.name, sub.status) == ("T@example.org", "Tee", "active")
    assert sub.confirmed is not None
    assert (member.format, member.status) == ("text", "active")


def test_import_send_list_unsubscribe_and_export(database_url, make_project, tmp_path) -> None:
    project = make_project()
    settings = project.settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,format\nAna@Example.org,Ana,html\nbo@example.org,Bo,text\n"
        "=x@example.org,=SUM(1),html\n"
    )
    report = import_people(settings, engine, path)
    assert report.added == 3
    keys = Keyring(b"store-test-key-long-enough")
    actions.unsubscribe(engine, keys, keys.make("unsubscribe", 2, "weekly", now=NOW), now=NOW)
    from digest.store.audience import recipients_for

    with engine.connect() as conn:
        assert [r.email for r in recipients_for(conn, ["weekly"])] == [
            "Ana@Example.org",
            "=x@example.org",
        ]
    out = io.StringIO()
    assert export_csv(App(settings, engine), out, list_slug="weekly", status=None) == 3
    exported = tmp_path / "export.csv"
    exported.write_text(out.getvalue())
    again = import_people(settings, engine, exported)
    assert (again.added, again.updated, again.unchanged, len(again.suppressed)) == (0, 0, 2, 1)


def test_collect_and_build_store_the_same_on_both(database_url, make_project, tmp_path) -> None:
    project = make_project(SOURCES)
    settings = project.settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    first = collect(settings, engine, NOW)
    assert not first.failed and first.added > 0
    second = collect(settings, engine, NOW + timedelta(hours=1))
    assert second.added == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(items)).scalar() == 16
    result = build(settings, engine, week=None, out=tmp_path / "out", force=False, now=NOW)
    assert result.edition is not None
    assert [s.count for s in result.edition.sections] == [7, 3, 5]


def test_the_ledger_sends_everyone_once_on_both(database_url, make_project, tmp_path) -> None:
    from digest.config import Secrets
    from digest.context import App
    from digest.lifecycle.sending import send
    from digest.store import ledger

    project = make_project(SOURCES)
    settings = project.settings(database_url=database_url)
    settings.delivery.batch_size = 7
    engine = open_engine(settings.database_url, settings.base_dir)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,format\n"
        + "".join(f"p{i}@example.org,{'text' if i % 4 == 0 else 'html'}\n" for i in range(60))
    )
    import_people(settings, engine, people)
    collect(settings, engine, NOW)
    build(settings, engine, week=None, out=tmp_path / "out", force=False, now=NOW)
    ctx = App(settings, engine, Secrets(secret_key="a-long-enough-secret-key"), lambda: NOW)
    result = send(ctx, None, who="test")
    plan = result.plan
    assert sum(plan.new_recipients.values()) == 60 and plan.new_batches == 3 + 7
    assert result.report.outcomes["accepted"] == 10 and result.state == "sent"
    with engine.connect() as conn:
        state = ledger.summary(conn, plan.edition.id)
    assert state["recipients"]["accepted"] == 60 and state["batches"]["accepted"] == 10
    emls = list((tmp_path / "var" / "outbox" / plan.edition.id).glob("*.eml"))
    assert len(emls) == 60
    again = send(ctx, None, who="test").plan
    assert sum(again.new_recipients.values()) == 0 and again.new_batches == 0


def test_workers_claiming_at_once_never_get_one_batch_twice(database_url, tmp_path) -> None:
    """Six threads, each with its own connection, claim 300 batches as fast as they can."""
    import threading

    from digest.lifecycle.states import Kind, store_edition
    from digest.store import ledger
    from tests.golden_edition import golden_edition, render_golden

    engine = open_engine(database_url, tmp_path)
    edition = golden_edition()
    with engine.begin() as conn:
        store_edition(conn, edition, render_golden(), kind=Kind.WEEKLY, who="t", now=NOW)
        for seq in range(1, 301):
            ledger.add_batch(conn, edition.id, seq, "html", "outbox", NOW)
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def work(name: str) -> None:
        start.wait()
        while True:
            with engine.begin() as conn:
                got = ledger.claim(conn, edition.id, name, NOW)
            if got is None:
                return
            with lock:
                claimed.append(got.seq)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(claimed) == list(range(1, 301))  # each batch once, none left
