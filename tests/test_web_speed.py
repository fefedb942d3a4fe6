"""The web app's fast one-click unsubscribe (issue 18): the writer that commits a group of
writes at once, SQLite's WAL and the writers' lock, and `digest serve --workers` running
the scheduler in one process only."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.audience.actions import unsubscribe
from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.errors import AudienceError
from digest.store.db import one_writer
from digest.store.tables import suppressions
from digest.web.server import default_workers
from digest.web.writer import GroupWriter, within
from tests.conftest import NOW, import_people
from tests.served import free_port

KEY = "speed-test-secret-key-0123456789"


@pytest.fixture
def people(make_project, tmp_path: Path):
    project = make_project()
    settings, engine = project.settings(), project.engine()
    csv = tmp_path / "p.csv"
    csv.write_text("email\n" + "".join(f"p{i}@example.org\n" for i in range(12)))
    import_people(settings, engine, csv)
    return project, engine


def _commits(engine: sa.Engine) -> list[int]:
    seen: list[int] = []
    sa.event.listen(engine, "commit", lambda conn: seen.append(1))
    return seen


def test_writes_queued_together_are_one_commit_and_each_gets_its_answer(people) -> None:
    _, engine = people
    keys = Keyring(KEY.encode())
    tokens = [keys.make("unsubscribe", i, "weekly", now=NOW) for i in range(1, 11)]
    writer = GroupWriter(engine)
    commits = _commits(engine)

    async def all_at_once() -> list[bool]:
        with one_writer(engine):  # the writer waits here while all ten queue up
            pending = [
                asyncio.ensure_future(
                    writer.run(lambda c, t=t: unsubscribe(within(c), keys, t, now=NOW).changed)
                )
                for t in tokens
            ]
            await asyncio.sleep(0.3)
        return await asyncio.gather(*pending)

    assert asyncio.run(all_at_once()) == [True] * 10
    assert len(commits) == 1
    for i in range(10):
        member = details(engine, f"p{i}@example.org").memberships[0]
        assert member.status == "unsubscribed"
    with engine.connect() as conn:
        rows = conn.execute(sa.select(suppressions.c.origin, suppressions.c.reason)).all()
    assert sorted(rows) == [("unsubscribe link", "unsubscribed")] * 10
    # The same links again: nothing changes, nothing is stored twice.
    assert asyncio.run(all_at_once()) == [False] * 10
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(suppressions)).scalar() == 10


def test_a_write_that_fails_fails_alone_and_the_others_are_kept(people) -> None:
    _, engine = people
    keys = Keyring(KEY.encode())
    good = [keys.make("unsubscribe", i, "weekly", now=NOW) for i in (1, 2)]
    gone = keys.make("unsubscribe", 999, "weekly", now=NOW)  # signed, but nobody
    writer = GroupWriter(engine)

    def half_done(conn: Connection) -> None:
        unsubscribe(within(conn), keys, good[1], now=NOW)
        raise RuntimeError("broken after writing")

    async def together() -> list[object]:
        with one_writer(engine):
            pending = [
                asyncio.ensure_future(writer.run(work))
                for work in (
                    lambda c: unsubscribe(within(c), keys, good[0], now=NOW).changed,
                    lambda c: unsubscribe(within(c), keys, gone, now=NOW),
                    half_done,
                )
            ]
            await asyncio.sleep(0.3)
        return await asyncio.gather(*pending, return_exceptions=True)

    first, missing, broken = asyncio.run(together())
    assert first is True
    assert isinstance(missing, AudienceError) and "no longer hold" in str(missing)
    assert isinstance(broken, RuntimeError)
    assert details(engine, "p0@example.org").memberships[0].status == "unsubscribed"
    # The broken write's own change was rolled back with it.
    assert details(engine, "p1@example.org").memberships[0].status == "active"


def test_sqlite_runs_in_wal_mode_and_web_writers_queue_across_processes(people) -> None:
    _, engine = people
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    holder = (
        "import sys, time, sqlalchemy as sa\n"
        "from digest.store.db import one_writer\n"
        "engine = sa.create_engine(sys.argv[1])\n"
        "with one_writer(engine):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(1.0)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", holder, str(engine.url)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        started = time.monotonic()
        with one_writer(engine):  # waits for the other process's writer
            waited = time.monotonic() - started
    finally:
        other.wait(timeout=30)
    assert waited > 0.5
    assert Path(f"{engine.url.database}-writer.lock").stat().st_mode & 0o777 == 0o600


def test_serve_with_two_workers_runs_the_scheduler_once(people) -> None:
    project, engine = people
    port = free_port()
    log = project.folder / "serve.log"
    env = {**os.environ, "DIGEST_SECRET_KEY": KEY}
    argv = [sys.executable, "-m", "digest", "serve", "--port", str(port), "--workers", "2"]
    token = Keyring(KEY.encode()).make("unsubscribe", 3, "weekly", now=NOW)
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [*argv, "--config", str(project.config)], stdout=out, stderr=out, env=env
        )
        try:
            _wait_for(lambda: len(_servers(log)) == 2, serve, log)
            answers = [
                httpx.post(
                    f"http://127.0.0.1:{port}/u/{token}",
                    content=b"List-Unsubscribe=One-Click",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                    timeout=30,
                )
                for _ in range(4)
            ]
            assert [a.status_code for a in answers] == [200] * 4
            assert sum("already done" in a.text for a in answers) == 3
        finally:
            serve.terminate()
            serve.wait(timeout=120)
    text = log.read_text()
    assert text.count("Scheduler started") == 1, text
    assert text.count("Scheduler has been shut down") == 1, text
    parent = re.findall(r"Started parent process \[(\d+)\]", text)
    assert parent == [str(serve.pid)] and str(serve.pid) not in _servers(log)
    assert details(engine, "p2@example.org").memberships[0].status == "unsubscribed"
    with engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(suppressions)
        assert conn.execute(count).scalar() == 1


def _servers(log: Path) -> set[str]:
    return set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))


def _wait_for(ready, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(0.5)  # the last worker's "startup complete" follows its first line


def test_one_process_serves_as_before(people) -> None:
    """--workers 1 (the default): no worker processes, the app served in this process."""
    project, _ = people
    port = free_port()
    log = project.folder / "serve.log"
    env = {**os.environ, "DIGEST_SECRET_KEY": KEY}
    argv = [sys.executable, "-m", "digest", "serve", "--port", str(port)]
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [*argv, "--config", str(project.config)], stdout=out, stderr=out, env=env
        )
        try:
            _wait_for(lambda: len(_servers(log)) == 1, serve, log)
        finally:
            serve.terminate()
            serve.wait(timeout=120)
    text = log.read_text()
    assert _servers(log) == {str(serve.pid)}
    assert "Started parent process" not in text and text.count("Scheduler started") == 1


def test_the_default_is_one_worker_on_sqlite_and_one_a_core_on_postgresql(make_project) -> None:
    project = make_project()
    assert default_workers(project.settings()) == 1
    postgres = project.settings(database_url="postgresql+psycopg://digest@/digest")
    assert default_workers(postgres) == max(1, min(4, os.cpu_count() or 1))
