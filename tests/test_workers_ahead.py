"""A big send's worker processes start while it plans and wait, ready, for its contents;
whatever ends the send before delivery (a failing plan, a stop, a plan smaller than the
count said) leaves none of them running."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import digest.lifecycle.sending as sending
from digest.cli import app
from digest.dispatch.processes import WorkerPool
from digest.store import audience
from digest.store.tables import batches
from tests.conftest import Project
from tests.fake_sendgrid import FakeSendGrid
from tests.sendgrid_setup import prepare
from tests.waiting import wait_until

PEOPLE = 3000  # 60 batches of 50: two processes when asked for


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[WorkerPool]]:
    """Every worker pool started in this test, as it starts."""
    started: list[WorkerPool] = []
    enter = WorkerPool.__enter__

    def recorded(pool: WorkerPool) -> WorkerPool:
        started.append(enter(pool))
        return pool

    monkeypatch.setattr(WorkerPool, "__enter__", recorded)
    yield started


def _big_send(
    make_project: Callable[[str], Project],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeSendGrid,
    people: int = PEOPLE,
) -> tuple[Project, CliRunner, list[str]]:
    project, runner, cfg = prepare(make_project, tmp_path, monkeypatch, fake.url, people, batch=50)
    monkeypatch.setenv("DIGEST_DELIVERY__PROCESSES", "2")
    return project, runner, cfg


def _plan_then(monkeypatch: pytest.MonkeyPatch, after: Callable[[Any], None]) -> None:
    """The send's plan, then ``after`` with what it planned, before delivery begins (the
    preview's dry run before the yes goes as it did)."""
    plan_send = sending.plan_send

    def planned(*args: Any, **kwargs: Any) -> Any:
        plan = plan_send(*args, **kwargs)
        if not kwargs["dry_run"]:
            after(plan)
        return plan

    monkeypatch.setattr(sending, "plan_send", planned)


def _started(pools: list[WorkerPool]) -> list[multiprocessing.process.BaseProcess]:
    wait_until("the send's worker processes", lambda: bool(pools) and _alive(pools[0]))
    return list(pools[0].workers)


def _alive(pool: WorkerPool) -> bool:
    return len(pool.workers) == 2 and all(w.is_alive() for w in pool.workers)


def _waiting_on_its_pipe(pid: int) -> bool:
    """Ready: imported, engine and transport made, blocked reading its pipe (seen twice,
    0.2 s apart: the spawn's own start reads a pipe too, for a moment)."""

    def reading() -> bool:
        try:
            return "pipe_read" in Path(f"/proc/{pid}/wchan").read_text()
        except OSError:
            return False

    return reading() and not time.sleep(0.2) and reading()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _claimers(project: Project) -> set[str]:
    with project.engine().connect() as conn:
        claimed = conn.execute(sa.select(batches.c.claimed_by)).scalars()
        return {c.split(":")[1] for c in claimed if c}


def test_a_big_sends_workers_are_ready_before_its_plan_ends_and_deliver_it(
    make_project, tmp_path, monkeypatch, fake: FakeSendGrid, pools: list[WorkerPool]
) -> None:
    project, runner, cfg = _big_send(make_project, tmp_path, monkeypatch, fake)
    ready: list[int] = []

    def wait_for_them(_plan: Any) -> None:
        for worker in _started(pools):
            assert worker.pid is not None
            wait_until("a worker ready", lambda pid=worker.pid: _waiting_on_its_pipe(pid))
            ready.append(worker.pid)

    _plan_then(monkeypatch, wait_for_them)
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    counts = fake.accepted_counts()
    assert len(counts) == PEOPLE and set(counts.values()) == {1}
    assert _claimers(project) == {str(pid) for pid in ready}  # the ones started ahead
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("when", ["getting ready", "ready"])
def test_a_failing_plan_leaves_no_worker_running(
    make_project, tmp_path, monkeypatch, fake: FakeSendGrid, pools: list[WorkerPool], when: str
) -> None:
    project, runner, cfg = _big_send(make_project, tmp_path, monkeypatch, fake)
    pids: list[int] = []

    def fail(_plan: Any) -> None:
        for worker in _started(pools):
            assert worker.pid is not None
            pids.append(worker.pid)
            if when == "ready":
                wait_until("a worker ready", lambda pid=worker.pid: _waiting_on_its_pipe(pid))
        raise RuntimeError("the disk went away")

    _plan_then(monkeypatch, fail)
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code != 0
    assert "the disk went away" in result.output
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)
    assert multiprocessing.active_children() == []
    if when == "ready":  # told to leave, they left by themselves, not killed
        assert [w.exitcode for w in pools[0].workers] == [0, 0]
    assert fake.accepted_counts() == {} and _claimers(project) == set()


def test_a_send_stopped_while_it_plans_claims_nothing_and_leaves_no_worker(
    make_project, tmp_path, monkeypatch, fake: FakeSendGrid, pools: list[WorkerPool]
) -> None:
    project, _, _ = _big_send(make_project, tmp_path, monkeypatch, fake)
    stop = threading.Event()

    def stopped(_plan: Any) -> None:
        _started(pools)
        stop.set()  # what SIGTERM or Ctrl-C does

    _plan_then(monkeypatch, stopped)
    result = sending.send(project.app(), None, who="test", stop=stop)
    assert result.report.interrupted and not result.report.outcomes
    assert fake.accepted_counts() == {} and _claimers(project) == set()
    assert multiprocessing.active_children() == []
    assert all(_gone(w.pid) for w in pools[0].workers if w.pid is not None)


def test_a_send_smaller_than_its_count_goes_by_threads_and_dismisses_the_workers(
    make_project, tmp_path, monkeypatch, fake: FakeSendGrid, pools: list[WorkerPool]
) -> None:
    """The count said 100,000 members (the workers start); the plan finds 100 people,
    two batches: the threads alone send them, the workers leave unused."""
    project, runner, cfg = _big_send(make_project, tmp_path, monkeypatch, fake, people=100)
    monkeypatch.setattr(audience, "member_count", lambda conn, slugs: 100_000)
    _plan_then(monkeypatch, lambda _plan: _started(pools))
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    counts = fake.accepted_counts()
    assert len(counts) == 100 and set(counts.values()) == {1}
    assert _claimers(project) == {str(os.getpid())}
    assert multiprocessing.active_children() == []
