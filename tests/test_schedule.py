"""The scheduler and staff approval: on time across clock changes, once, only when approved."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from typer.testing import CliRunner

import digest.lifecycle.weekly
from digest.cli import app
from digest.lifecycle.sending import resume_unfinished
from digest.lifecycle.weekly import approve, auto_send_due, run_weekly
from digest.schedule import cron, make_scheduler
from digest.store import editions
from tests.conftest import EXAMPLE_SOURCES, NOW
from tests.sendgrid_setup import KEY

NY = ZoneInfo("America/New_York")
STAFF = """
[[lists]]
slug = "staff"
name = "Staff"
kind = "digest"
"""


@pytest.mark.parametrize(
    ("day_before", "offset_hours"),
    [("2026-10-28", -4), ("2026-11-04", -5), ("2027-03-10", -5), ("2027-03-17", -4)],
)
def test_the_weekly_job_fires_at_seven_local_around_the_clock_changes(
    make_project, tmp_path, day_before: str, offset_hours: int
) -> None:
    project = make_project()
    settings = project.settings()
    with time_machine.travel(datetime.fromisoformat(day_before + "T12:00:00-05:00"), tick=False):
        scheduler = make_scheduler(settings, project.config)
        try:
            fire = scheduler.get_job("weekly").next_run_time
        finally:
            scheduler.shutdown(wait=False)
    local = fire.astimezone(NY)
    assert (local.strftime("%a %H:%M"), local.utcoffset()) == (
        "Thu 07:00",
        timedelta(hours=offset_hours),
    )
    assert local.date() == datetime.fromisoformat(day_before).date() + timedelta(days=1)


def test_a_bad_cron_line_names_the_key(make_project) -> None:
    from digest.errors import ConfigError

    settings = make_project('[schedule]\nsend = "at seven"\n').settings()
    with pytest.raises(ConfigError, match=r"schedule\.send"):
        cron(settings.schedule.send, settings, "send")


def _restart_after_downtime(project, monkeypatch, missed_by: timedelta) -> list[str]:
    """Stop the scheduler, pretend it was down since a weekly run was due, start it again."""
    calls: list[str] = []
    monkeypatch.setattr(
        digest.lifecycle.weekly, "run_weekly", lambda *a, **k: calls.append("ran") or "ok"
    )
    settings = project.settings()
    scheduler = make_scheduler(settings, project.config)
    scheduler.shutdown(wait=True)
    # Rewrite the stored next run as the job store keeps it, as if the machine had been off.
    store = scheduler._lookup_jobstore("default")
    store.start(scheduler, "default")
    job = store.lookup_job("weekly")
    job._modify(next_run_time=datetime.now(NY) - missed_by)
    store.update_job(job)
    again = make_scheduler(settings, project.config)
    again.resume()
    deadline = time.monotonic() + 20  # a loaded CI machine is slow to wake the scheduler
    try:
        while time.monotonic() < deadline and not calls:
            with project.engine().connect() as conn:
                if editions.history(conn):
                    break
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        again.shutdown(wait=True)
    return calls


def test_down_at_send_time_within_grace_sends_once(make_project, monkeypatch) -> None:
    project = make_project("[schedule]\ngrace_minutes = 60\n")
    assert _restart_after_downtime(project, monkeypatch, timedelta(minutes=20)) == ["ran"]


def test_down_past_the_grace_period_does_not_send_and_says_why(make_project, monkeypatch) -> None:
    project = make_project("[schedule]\ngrace_minutes = 60\n")
    assert _restart_after_downtime(project, monkeypatch, timedelta(hours=3)) == []
    result = CliRunner().invoke(app, ["editions", "--config", str(project.config)])
    assert "missed" in result.output and "by hand" in result.output


@pytest.fixture
def approval(make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = make_project(EXAMPLE_SOURCES + STAFF + "[edition]\nrequire_approval = true\n")
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    for slug, people in (
        ("weekly", "a@example.org\nb@example.org\n"),
        ("staff", "editor@example.org\n"),
    ):
        csv_file = tmp_path / f"{slug}.csv"
        csv_file.write_text("email\n" + people)
        assert (
            runner.invoke(
                app, ["subscribers", "import", str(csv_file), "--list", slug, *cfg]
            ).exit_code
            == 0
        )
    outcome = run_weekly(project.app(NOW), holder="test")
    return project, runner, cfg, outcome


def _outbox(project, folder: str) -> list[str]:
    return sorted(
        p.name.split("-", 1)[1] for p in (project.folder / "var" / "outbox" / folder).glob("*.eml")
    )


def test_a_preview_reaches_only_staff_and_approve_sends(approval) -> None:
    project, runner, cfg, outcome = approval
    assert "awaiting approval" in outcome
    assert _outbox(project, "preview-2026-W48") == ["editor@example.org.eml"]
    assert not (project.folder / "var" / "outbox" / "2026-W48").exists()
    result = runner.invoke(app, ["approve", "2026-W48", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    assert _outbox(project, "2026-W48") == [
        "a@example.org.eml",
        "b@example.org.eml",
        "editor@example.org.eml",
    ]
    listed = json.loads(runner.invoke(app, ["editions", "--json", *cfg]).stdout)
    assert listed[0]["state"] == "sent"
    with project.engine().connect() as conn:
        states = [(e.state, e.who) for e in reversed(editions.history(conn, "2026-W48"))]
    assert [s for s, _ in states] == ["built", "awaiting_approval", "approved", "sending", "sent"]
    assert states[1][1] == "scheduler" and states[2][1] != "scheduler"


def test_reject_sends_nothing_and_cannot_be_approved_after(approval) -> None:
    project, runner, cfg, _ = approval
    result = runner.invoke(app, ["reject", "2026-W48", "--note", "a typo", *cfg])
    assert result.exit_code == 0, result.output
    late = runner.invoke(app, ["approve", "2026-W48", "--yes", *cfg])
    assert late.exit_code == 1 and "rejected" in late.output
    assert not (project.folder / "var" / "outbox" / "2026-W48").exists()


def test_an_unapproved_edition_goes_out_at_its_deadline(approval, monkeypatch) -> None:
    project, _, _, _ = approval
    monkeypatch.setenv("DIGEST_EDITION__AUTO_SEND_AFTER", "6h")
    assert auto_send_due(project.app(NOW + timedelta(hours=5))) == []
    assert auto_send_due(project.app(NOW + timedelta(hours=7))) == ["2026-W48"]
    assert len(_outbox(project, "2026-W48")) == 3


def test_the_weekly_job_runs_once_per_week_and_skips_when_empty(approval) -> None:
    project, _, _, _ = approval
    assert "another process" in run_weekly(project.app(NOW), holder="other")
    assert "already awaiting approval" in run_weekly(project.app(NOW), holder="test")
    next_week = NOW + timedelta(days=7)
    assert "nothing new" in run_weekly(project.app(next_week), holder="test")


def test_a_send_cut_short_resumes_at_the_next_start(approval) -> None:
    project, runner, cfg, _ = approval
    stop = threading.Event()
    stop.set()  # SIGTERM came at once: nothing is sent, the edition stays "sending"
    approve(project.app(NOW), "2026-W48", who="ed", stop=stop)
    assert not (project.folder / "var" / "outbox" / "2026-W48").exists()
    listed = json.loads(runner.invoke(app, ["editions", "--json", *cfg]).stdout)
    assert listed[0]["state"] == "sending"
    assert resume_unfinished(project.app(NOW)) == ["2026-W48"]
    assert len(_outbox(project, "2026-W48")) == 3
    listed = json.loads(runner.invoke(app, ["editions", "--json", *cfg]).stdout)
    assert listed[0]["state"] == "sent"
