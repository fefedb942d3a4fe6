"""A send's threads share commits on SQLite: the writes waiting for the writer's turn go in
one transaction (one wait for the disk), each thread still gets its own result or error,
and what one thread's write got wrong never undoes its neighbours'."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digest.dispatch.commits import SharedCommits
from digest.store import open_engine

NOTES = sa.table("notes", sa.column("who", sa.Text))


def _engine(url: str, folder: Path) -> sa.Engine:
    engine = open_engine(url, folder)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (who TEXT NOT NULL)")
    return engine


def _notes(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(NOTES.c.who)).scalars())


def _commits_counted(engine: sa.Engine) -> list[int]:
    counted = [0]

    def on_commit(_conn: Any) -> None:
        counted[0] += 1

    sa.event.listen(engine, "commit", on_commit)
    return counted


def _note(who: str, *, fail: bool = False) -> Any:
    def statements(conn: sa.Connection) -> str:
        conn.execute(sa.insert(NOTES).values(who=who))
        if fail:
            raise ValueError(f"{who} went wrong")
        return who

    return statements


def _while_the_turn_is_held(commits: SharedCommits, waiting: list[Any]) -> dict[str, Any]:
    """One write holds the turn while ``waiting`` writes queue behind it; each thread's
    result (or exception) by the name it wrote."""
    inside, release = threading.Event(), threading.Event()
    got: dict[str, Any] = {}

    def first(conn: sa.Connection) -> str:
        conn.execute(sa.insert(NOTES).values(who="first"))
        inside.set()
        release.wait(10)
        return "first"

    def run(name: str, statements: Any) -> None:
        try:
            got[name] = commits.write(statements)
        except Exception as exc:
            got[name] = exc

    threads = [threading.Thread(target=run, args=("first", first))]
    threads[0].start()
    assert inside.wait(10)
    for name, statements in waiting:
        threads.append(threading.Thread(target=run, args=(name, statements)))
        threads[-1].start()
    deadline = time.monotonic() + 10
    while len(commits._waiting) < len(waiting) and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    return got


def test_writes_waiting_for_the_turn_share_one_commit(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    commits = SharedCommits.on(engine)
    counted = _commits_counted(engine)
    names = [f"thread-{i}" for i in range(5)]
    got = _while_the_turn_is_held(commits, [(name, _note(name)) for name in names])
    assert got == {"first": "first", **{name: name for name in names}}
    assert _notes(engine) == sorted(["first", *names])
    assert counted[0] == 2  # the first alone, the five that waited together


def test_a_failing_write_fails_its_own_thread_only(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    commits = SharedCommits.on(engine)
    waiting = [("a", _note("a")), ("bad", _note("bad", fail=True)), ("b", _note("b"))]
    got = _while_the_turn_is_held(commits, waiting)
    assert isinstance(got["bad"], ValueError) and "bad went wrong" in str(got["bad"])
    assert {name: got[name] for name in ("first", "a", "b")} == {
        "first": "first",
        "a": "a",
        "b": "b",
    }
    assert _notes(engine) == ["a", "b", "first"]  # nothing of the failed write was kept


def test_many_threads_each_write_committed_once(database_url: str, tmp_path: Path) -> None:
    engine = _engine(database_url, tmp_path)
    commits = SharedCommits.on(engine)
    got: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        for j in range(20):
            result = commits.write(_note(f"{i}-{j}"))
            with lock:
                got.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    expected = sorted(f"{i}-{j}" for i in range(4) for j in range(20))
    assert sorted(got) == expected
    assert _notes(engine) == expected


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_a_write_queued_behind_an_interrupted_turn_still_goes_in(
    tmp_path: Path, error: type[BaseException]
) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    commits = SharedCommits.on(engine)
    waiting = [("a", _note("a"))]
    inside, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def first(conn: sa.Connection) -> str:
        inside.set()
        release.wait(10)
        raise error()

    def lead() -> None:
        try:
            commits.write(first)
        except BaseException as exc:
            outcome["first"] = exc

    def follow() -> None:
        try:
            outcome["a"] = commits.write(waiting[0][1])
        except BaseException as exc:
            outcome["a"] = exc

    leader = threading.Thread(target=lead)
    leader.start()
    assert inside.wait(10)
    follower = threading.Thread(target=follow)
    follower.start()
    while not commits._waiting:
        time.sleep(0.01)
    release.set()
    leader.join(10)
    follower.join(10)
    assert not follower.is_alive()
    assert isinstance(outcome["first"], error)
    # The follower queued after the interrupted turn had taken its group: it takes the
    # next turn itself, and its write is committed.
    assert outcome["a"] == "a"
    assert _notes(engine) == ["a"]


def test_a_commit_that_fails_is_every_waiting_writes_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    commits = SharedCommits.on(engine)

    def broken_disk(self: sa.Connection) -> None:
        raise OSError("disk I/O error")

    monkeypatch.setattr(sa.engine.Connection, "commit", broken_disk)
    names = ["a", "b"]
    got = _while_the_turn_is_held(commits, [(name, _note(name)) for name in names])
    monkeypatch.undo()
    # Nobody's write went in, and each was told: none was tried again behind its back.
    assert all(isinstance(got[name], OSError) for name in ("first", *names)), got
    assert _notes(engine) == []
