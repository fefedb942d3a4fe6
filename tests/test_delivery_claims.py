"""A worker claims its next batch in the transaction that records the last one (one
commit a batch): a batch claimed so and never sent is given back, not left uncertain."""

from __future__ import annotations

import json

from digest.cli import app
from tests.sendgrid_setup import prepare


def _status(runner, cfg) -> dict:
    result = runner.invoke(app, ["status", "--json", *cfg])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_batch_once_with_one_worker_claiming_as_it_records(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    _, runner, cfg = prepare(make_project, tmp_path, monkeypatch, fake.url, 60, batch=10)
    monkeypatch.setenv("DIGEST_DELIVERY__CONCURRENCY", "1")
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    counts = fake.accepted_counts()
    assert len(counts) == 60 and set(counts.values()) == {1}
    state = _status(runner, cfg)
    assert state["recipients"]["accepted"] == 60
    assert state["batches"]["in_flight"] == state["batches"]["uncertain"] == 0


def test_a_batch_claimed_and_never_sent_goes_back_to_pending(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    import digest.dispatch.run as run_module

    _, runner, cfg = prepare(make_project, tmp_path, monkeypatch, fake.url, 30, batch=10)
    monkeypatch.setenv("DIGEST_DELIVERY__CONCURRENCY", "1")
    real = run_module._report

    def broken(*args: object) -> None:  # what follows the commit fails (say, the watcher)
        raise RuntimeError("the progress display broke")

    monkeypatch.setattr(run_module, "_report", broken)
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1
    assert "could not be recorded" in result.output
    monkeypatch.setattr(run_module, "_report", real)
    state = _status(runner, cfg)
    batches = state["batches"]
    # The first batch went out and is recorded; the one claimed with it never went out.
    assert batches["accepted"] == 1 and batches["pending"] >= 2
    assert batches["in_flight"] == batches["uncertain"] == 0
    assert len(fake.accepted_counts()) == state["recipients"]["accepted"] > 0
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    counts = fake.accepted_counts()
    assert len(counts) == 30 and set(counts.values()) == {1}
