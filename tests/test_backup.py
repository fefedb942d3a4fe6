"""`digest backup` / `digest restore`, the daily backup job and the backup before an upgrade,
on SQLite and on PostgreSQL (under scripts/with-postgres)."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from typer.testing import CliRunner

from digest import backup_copy
from digest.backup import take_backup
from digest.cli import app as cli
from digest.config import Secrets
from digest.context import App, open_app
from digest.schedule import backup_job
from digest.store import db, operations
from digest.store.tables import batches, send_recipients, subscribers
from tests.conftest import Project, second_database
from tests.fake_sendgrid import FakeSendGrid
from tests.sendgrid_setup import prepare
from tests.waiting import wait_until

PEOPLE = 20_000
HEAD = backup_copy.revision_order()[-1]
Snapshot = dict[str, Any]


def _engine(url: str) -> sa.engine.Engine:
    """An engine on ``url`` as it is (no migrations)."""
    return sa.create_engine(url)


@pytest.fixture
def spare_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh database of the same kind as ``database_url``, empty."""
    with second_database(database_url, tmp_path, "spare", migrated=False) as url:
        yield url


def _digest(tmp_path: Path, monkeypatch, url: str, *args: str) -> Any:
    """`digest ARGS` in-process with DIGEST_DATABASE_URL set to ``url``."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", url)
    return CliRunner().invoke(cli, [*args, "--config", str(tmp_path / "config.toml")])


def _checksum(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()


def _snapshot(
    batch_rows: list[tuple[Any, ...]],
    recipient_rows: list[tuple[Any, ...]],
    subscriber_rows: list[tuple[Any, ...]],
) -> Snapshot:
    """Counts and checksums of the ledger (batches: id, seq, state, message_id;
    send_recipients: subscriber_id, batch_id, email) and of the subscribers (id, email)."""
    states: dict[str, int] = {}
    for _, _, state, _ in batch_rows:
        states[state] = states.get(state, 0) + 1
    return {
        "batches": states,
        "recipients": len(recipient_rows),
        "subscribers": len(subscriber_rows),
        "ledger": _checksum(batch_rows + recipient_rows),
        "people": _checksum(subscriber_rows),
        "batch_rows": batch_rows,
        "recipient_rows": recipient_rows,
    }


def _snapshot_of_db(url: str) -> Snapshot:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            b = conn.execute(
                sa.select(batches.c.id, batches.c.seq, batches.c.state, batches.c.message_id)
            ).all()
            r = conn.execute(
                sa.select(
                    send_recipients.c.subscriber_id,
                    send_recipients.c.batch_id,
                    send_recipients.c.email,
                )
            ).all()
            s = conn.execute(sa.select(subscribers.c.id, subscribers.c.email)).all()
    finally:
        engine.dispose()
    return _snapshot([tuple(x) for x in b], [tuple(x) for x in r], [tuple(x) for x in s])


def _snapshot_of_file(path: Path) -> Snapshot:
    """The same snapshot read from the backup file itself, not through a restore."""
    if backup_copy.kind_of_file(path) == "sqlite":
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            b = conn.execute("SELECT id, seq, state, message_id FROM batches").fetchall()
            r = conn.execute(
                "SELECT subscriber_id, batch_id, email FROM send_recipients"
            ).fetchall()
            s = conn.execute("SELECT id, email FROM subscribers").fetchall()
        finally:
            conn.close()
        return _snapshot(b, r, s)
    rows = backup_copy.pg_archive_rows

    def num(v: str | None) -> int | None:
        return None if v is None else int(v)

    return _snapshot(
        [(num(x["id"]), num(x["seq"]), x["state"], x["message_id"]) for x in rows(path, "batches")],
        [
            (num(x["subscriber_id"]), num(x["batch_id"]), x["email"])
            for x in rows(path, "send_recipients")
        ],
        [(num(x["id"]), x["email"]) for x in rows(path, "subscribers")],
    )


def _accepted(url: str) -> int:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(batches.c.state == "accepted")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_backup_during_a_20000_recipient_send_restores_that_moment(
    make_project: Callable[[str], Project],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeSendGrid,
    database_url: str,
    spare_database: str,
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)
    project, _, _ = prepare(
        make_project, tmp_path, monkeypatch, fake.url, PEOPLE, batch=100, concurrency=2
    )
    live = db.sqlite_url_for(database_url, tmp_path)
    fake.faults.latency = 0.01
    argv = [sys.executable, "-m", "digest", "send", "--yes", "--config", str(project.config)]
    log = (tmp_path / "send.log").open("wb")
    sender = subprocess.Popen(argv, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until("5 batches accepted", lambda: _accepted(live) >= 5, timeout=60, proc=sender)
        ctx = App(project.settings(), _engine(live), Secrets.from_env())
        before = _accepted(live)
        started = time.monotonic()
        taken = take_backup(ctx, out=None)
        took = time.monotonic() - started
        after = _accepted(live)
        assert sender.poll() is None, "the send was still running while the backup was taken"
        # The rest of the send is not needed: SIGTERM finishes the batches in flight.
        sender.send_signal(signal.SIGTERM)
        sender.wait(timeout=60)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(timeout=10)
        log.close()
    print(f"\n{database_url.split(':')[0]} backup during the send: {took:.2f} s, {taken.bytes} B")
    assert taken.ok and Path(taken.path).stat().st_size == taken.bytes
    with ctx.engine.connect() as conn:
        assert operations.last_backup(conn) == taken
    ctx.engine.dispose()

    moment = _snapshot_of_file(Path(taken.path))
    # The copy is one moment of the send: between what the live database said just before
    # and just after, and taken while batches were still going out.
    accepted = moment["batches"].get("accepted", 0)
    assert before <= accepted <= after
    assert accepted < sum(moment["batches"].values())
    assert moment["subscribers"] == PEOPLE
    assert moment["recipients"] == PEOPLE  # the plan was whole
    # Every recipient row points at a batch in the copy, every batch has recipients, and an
    # accepted batch has the message id SendGrid gave it: no half-written batch.
    ids = {row[0] for row in moment["batch_rows"]}
    assert {row[1] for row in moment["recipient_rows"]} == ids
    for _, _, state, message_id in moment["batch_rows"]:
        assert (message_id is not None) == (state == "accepted")
    fake_ids = {p["_request"] for p in list(fake.accepted)}
    assert accepted <= len(fake_ids)

    restored = _digest(tmp_path, monkeypatch, spare_database, "restore", taken.path)
    assert restored.exit_code == 0, restored.output
    again = _snapshot_of_db(db.sqlite_url_for(spare_database, tmp_path))
    for key in ("batches", "recipients", "subscribers", "ledger", "people"):
        assert again[key] == moment[key], key
    final = _snapshot_of_db(live)
    assert final["batches"].get("accepted", 0) >= after
    assert final["recipient_rows"] == moment["recipient_rows"]  # the plan, unchanged


def _import(project: Project, *emails: str) -> None:
    csv_file = project.folder / "people.csv"
    csv_file.write_text("email,name\n" + "".join(f"{e},{e}\n" for e in emails))
    args = ["subscribers", "import", str(csv_file), "--list", "weekly"]
    result = CliRunner().invoke(cli, [*args, "--config", str(project.config)])
    assert result.exit_code == 0, result.output


def _people(url: str) -> list[tuple[Any, ...]]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(subscribers.c.email)).all()]
    finally:
        engine.dispose()


def test_restore_onto_data_needs_force(
    make_project, tmp_path, monkeypatch, database_url, spare_database
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)
    project = make_project("")
    _import(project, "ada@example.org")
    monkeypatch.chdir(tmp_path)
    made = _digest(tmp_path, monkeypatch, database_url, "backup", "--out", "one.bak")
    assert made.exit_code == 0, made.output
    assert "backed up the database to" in made.output and "KB" in made.output
    assert "@" not in made.output.split(" to ", 1)[1]  # no URL, no password
    monkeypatch.setenv("DIGEST_DATABASE_URL", spare_database)
    _import(project, "ada@example.org", "bea@example.org")
    spare = db.sqlite_url_for(spare_database, tmp_path)
    held = _snapshot_of_db(spare)
    assert sorted(_people(spare)) == [("ada@example.org",), ("bea@example.org",)]

    refused = _digest(tmp_path, monkeypatch, spare_database, "restore", "one.bak")
    assert refused.exit_code == 1
    assert "holds data (subscribers" in refused.output and "--force" in refused.output
    assert _snapshot_of_db(spare) == held

    forced = _digest(tmp_path, monkeypatch, spare_database, "restore", "one.bak", "--force")
    assert forced.exit_code == 0, forced.output
    assert _people(spare) == [("ada@example.org",)]


def _downgraded(url: str, revision: str) -> None:
    """The database at ``url`` migrated only up to ``revision``."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    engine = _engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_an_older_backup_is_migrated_and_a_newer_one_refused(
    make_project, tmp_path, monkeypatch, database_url, empty_database, spare_database
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)
    project = make_project("")
    live = db.sqlite_url_for(database_url, tmp_path)
    _downgraded(live, "0014")
    # Opening the application upgrades it, and backs it up first into [backup] dir.
    ctx = open_app(project.config)
    folder = tmp_path / "var" / "backups"
    (before_upgrade,) = list(folder.iterdir())
    assert backup_copy.NAMED.match(before_upgrade.name)
    with ctx.engine.connect() as conn:
        last = operations.last_backup(conn)
    assert last is not None and last.path == str(before_upgrade) and "0014" in last.detail
    ctx.engine.dispose()
    kind = backup_copy.kind_of_file(before_upgrade)
    read = backup_copy.sqlite_revision if kind == "sqlite" else backup_copy.pg_revision
    assert read(before_upgrade) == "0014"

    result = _digest(tmp_path, monkeypatch, spare_database, "restore", str(before_upgrade))
    assert result.exit_code == 0, result.output
    assert "migration 0014: ran the migrations up to" in result.output
    spare = db.sqlite_url_for(spare_database, tmp_path)
    engine = _engine(spare)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        assert sa.inspect(conn).has_table("backups")
    # A database from a later digest: its backup is refused, the database left alone.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    newer = tmp_path / "newer.bak"
    backup_copy.copy_database(spare, newer)
    refused = _digest(tmp_path, monkeypatch, database_url, "restore", str(newer), "--force")
    assert refused.exit_code == 1
    assert "made by a newer digest" in refused.output and "upgrade first" in refused.output


def test_a_backup_of_the_other_kind_of_database_is_refused(
    make_project, tmp_path, monkeypatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    make_project("")
    fake_dump = tmp_path / "other.pgdump"
    fake_dump.write_bytes(b"PGDMP\x01\x0e\x00" + bytes(100))
    result = _digest(tmp_path, monkeypatch, url, "restore", str(fake_dump), "--force")
    assert result.exit_code == 1
    assert "is a PostgreSQL backup and the configured database is SQLite" in result.output
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    result = _digest(tmp_path, monkeypatch, url, "restore", str(junk))
    assert result.exit_code == 1 and "is not a backup digest made" in result.output


def test_the_daily_job_keeps_the_newest(make_project, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    project = make_project('[backup]\ndir = "saved"\nkeep = 2\n')
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "mine.txt").write_text("not a backup")
    made = []
    for _ in range(3):
        backup_job(str(project.config))
        made.append({p.name for p in folder.iterdir()})
    names = sorted(made[-1] - {"mine.txt"})
    assert len(names) == 2 and "mine.txt" in made[-1]
    assert all(backup_copy.NAMED.match(n) for n in names)
    first = made[0] - {"mine.txt"}
    assert not first & set(names)  # the oldest went
    ctx = open_app(project.config)
    with ctx.engine.connect() as conn:
        last = operations.last_backup(conn)
    assert last is not None and last.ok and Path(last.path).name in names
    ctx.engine.dispose()


def test_the_daily_job_logs_a_failure_and_never_raises(
    make_project, tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    project = make_project('[backup]\ndir = "blocked/here"\n')
    (tmp_path / "blocked").write_text("a file where the folder should be")
    backup_job(str(project.config))
    assert "backup: backup failed" in caplog.text
    ctx = open_app(project.config)
    with ctx.engine.connect() as conn:
        last = operations.last_backup(conn)
    assert last is not None and not last.ok and "blocked" in last.detail
    ctx.engine.dispose()


def test_the_dashboard_shows_the_last_backup(make_project, tmp_path, monkeypatch) -> None:
    from digest.staff.users import add_user
    from tests.console_setup import NOW, PASSWORD, STAFF, signed_in

    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "backup-test-secret-key-0123456789")
    ctx = make_project("").app()
    add_user(ctx.engine, STAFF, PASSWORD, who="test", now=NOW)
    client, _ = signed_in(ctx)
    assert "No backup yet: run <code>digest backup</code>" in client.get("/admin").text
    taken = take_backup(ctx, out=None)
    page = client.get("/admin").text
    assert "Last backup:" in page and f"<code>{taken.path}</code>" in page
