"""A big send with worker processes: both cores claim batches from the ledger, and every
recipient is accepted exactly once."""

from __future__ import annotations

import os

import sqlalchemy as sa
from typer.testing import CliRunner

from digest.cli import app
from digest.dispatch.processes import process_count
from digest.store.tables import batches
from tests.fake_sendgrid import FakeSendGrid
from tests.sendgrid_setup import prepare

PEOPLE = 50_000


def test_fifty_thousand_recipients_through_worker_processes_each_accepted_once(
    make_project, tmp_path, monkeypatch, fake: FakeSendGrid
) -> None:
    project, runner, cfg = prepare(make_project, tmp_path, monkeypatch, fake.url, PEOPLE, batch=500)
    monkeypatch.setenv("DIGEST_DELIVERY__PROCESSES", "2")
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    counts = fake.accepted_counts()
    assert len(counts) == PEOPLE and set(counts.values()) == {1}
    with project.engine().connect() as conn:
        claimers = set(conn.execute(sa.select(batches.c.claimed_by)).scalars())
        states = set(conn.execute(sa.select(batches.c.state)).scalars())
    pids = {c.split(":")[1] for c in claimers}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two workers, not this process
    assert states == {"accepted"}
    assert "accepted" in CliRunner().invoke(app, ["status", *cfg]).output


def test_a_small_send_or_another_transport_keeps_to_threads(make_project) -> None:
    settings = make_project("").settings()
    assert process_count(settings, 49, "sendgrid") == 1
    assert process_count(settings, 500, "flaky-test-transport") == 1
    settings.delivery.processes = 1
    assert process_count(settings, 500, "sendgrid") == 1
    settings.delivery.processes = 3
    assert process_count(settings, 500, "outbox") == 3
    assert process_count(settings, 60, "outbox") == 2  # 25 batches a process at least


def test_one_process_a_core_only_for_a_send_of_two_hundred_batches(
    make_project, monkeypatch
) -> None:
    """With delivery.processes 0 (one per core) the threads alone send up to 199 batches:
    two processes' start (their imports) cost more than the second core brought there."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    settings = make_project("").settings()
    assert settings.delivery.processes == 0
    assert process_count(settings, 199, "sendgrid") == 1
    assert process_count(settings, 200, "sendgrid") == 2
    settings.delivery.processes = 2  # asked for: from 50 batches
    assert process_count(settings, 50, "sendgrid") == 2
