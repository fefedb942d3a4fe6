"""An edition's life: the transition table, the audience of every way to send, cancelling,
and failures that are seen."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import digest.lifecycle.weekly
from digest.cli import app
from digest.config import Secrets
from digest.lifecycle.states import DELIVERED, MOVES, State, TransitionRefused, transition
from digest.lifecycle.weekly import run_weekly
from digest.schedule import auto_send_job
from digest.staff.users import add_user
from digest.store import editions
from digest.store.tables import edition_events
from digest.store.tables import editions as editions_table
from digest.web.app import create_app
from digest.web.console import wait_for_background
from tests.conftest import EXAMPLE_SOURCES, NOW, Project
from tests.console_setup import signed_in

KEY = "lifecycle-test-secret-key-0123456789"
STAFF, PASSWORD = "staff@example.org", "a long staff password"
WEEK = "2026-W48"
# A list of every kind, and people on each: who gets what is the point.
LISTS = """
[[lists]]
slug = "alerts"
name = "Action alerts"
kind = "alerts"

[[lists]]
slug = "inside"
name = "Print edition"
kind = "print"

[[lists]]
slug = "staff"
name = "Staff previews"
kind = "digest"
"""
MEMBERS = {
    "weekly": "email\nweekly@example.org\nboth@example.org\n",
    "alerts": "email\nalert@example.org\nboth@example.org\n",
    "inside": "email,format\ninside@example.org,print\n",
    "staff": "email\neditor@example.org\n",
}
WEEKLY_AUDIENCE = {
    "weekly@example.org",
    "both@example.org",
    "inside@example.org",
    "editor@example.org",
}
ALERT_AUDIENCE = {"alert@example.org", "both@example.org"}


# -- the table --------------------------------------------------------------------------


def _in_state(engine: sa.Engine, edition_id: str, state: State | None) -> None:
    """A stored edition in ``state`` (None: nothing stored), its history empty."""
    if state is None:
        return
    with engine.begin() as conn:
        conn.execute(
            sa.insert(editions_table).values(
                id=edition_id,
                subject="S",
                since=NOW,
                cutoff=NOW,
                built_at=NOW,
                item_count=0,
                edition_json="{}",
                html="",
                text="",
                state=state.value,
                kind="weekly",
            )
        )


@pytest.mark.parametrize("current", [None, *State])
def test_every_move_not_in_the_table_is_refused_and_changes_nothing(make_project, current):
    engine = make_project().engine()
    for n, target in enumerate(State):
        edition_id = f"e{n}"
        _in_state(engine, edition_id, current)
        with engine.begin() as conn:
            if target is State.CANCELLED and current in DELIVERED:
                # In the table, but only for mail booked for later: none is here.
                with pytest.raises(TransitionRefused, match="cannot be cancelled"):
                    transition(conn, edition_id, target, who="t", now=NOW)
                continue
            if target in MOVES[current]:
                assert transition(conn, edition_id, target, who="t", now=NOW) is current
                continue
            with pytest.raises(TransitionRefused) as refused:
                transition(conn, edition_id, target, who="t", now=NOW)
        message = str(refused.value)
        named = "has no edition stored" if current is None else f"is {current.label}"
        assert named in message and f"cannot become {target.label}" in message
        for allowed in MOVES[current]:
            assert allowed.label in message
        with engine.connect() as conn:
            assert editions.state_of(conn, edition_id) == (current.value if current else None)
            count = sa.select(sa.func.count()).select_from(edition_events)
            mine = count.where(edition_events.c.edition_id == edition_id)
            assert conn.execute(mine).scalar() == 0


def test_no_edition_state_is_a_string_literal_outside_the_lifecycle() -> None:
    """A line about a state with a state's name in quotes (batch outcomes and counts, which
    share some words, do not say "state"); the schema's default and migrations aside."""
    root = Path(__file__).resolve().parents[1] / "digest"
    words = "|".join(re.escape(s.value) for s in State)
    literal = re.compile(rf"""["']({words})["']""")
    offenders = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in root.rglob("*.py")
        if "lifecycle" not in path.parts
        and "migrations" not in path.parts
        and path.name != "tables.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "state" in line.lower() and literal.search(line)
    ]
    assert offenders == []


def test_only_the_lifecycle_plans_and_delivers() -> None:
    root = Path(__file__).resolve().parents[1] / "digest"
    callers = {
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if re.search(r"\b(plan_send|deliver)\(", path.read_text())
        and path.parent.name != "dispatch"
    }
    assert callers == {"lifecycle/sending.py"}


def test_no_module_is_over_400_lines() -> None:
    root = Path(__file__).resolve().parents[1] / "digest"
    long = {
        str(p.relative_to(root)): n
        for p in root.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


# -- who gets what, from every entry point ----------------------------------------------


@pytest.fixture
def everyone(make_project, tmp_path, monkeypatch) -> Project:
    """The examples' week with members on lists of every kind (nothing built yet)."""
    project = make_project(EXAMPLE_SOURCES + LISTS)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    for slug, rows in MEMBERS.items():
        path = tmp_path / f"{slug}.csv"
        path.write_text(rows)
        _cli(project, "subscribers", "import", str(path), "--list", slug)
    add_user(project.engine(), STAFF, PASSWORD, who="test", now=NOW)
    return project


def _cli(project: Project, *args: str, code: int = 0, at: datetime = NOW) -> str:
    with time_machine.travel(at, tick=False):
        result = CliRunner().invoke(app, [*args, "--config", str(project.config)])
    assert result.exit_code == code, result.output
    return result.output


def _got(project: Project, edition_id: str) -> set[str]:
    """Who has the edition in the outbox (each address once: asserted)."""
    folder = project.folder / "var" / "outbox" / edition_id
    seen = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
        .addresses[0]
        .addr_spec
        for p in folder.glob("*.eml")
    ]
    assert len(seen) == len(set(seen)), f"someone got {edition_id} twice: {seen}"
    return set(seen)


def _alert_id(output: str) -> str:
    found = re.search(r"alert-\d{8}-\d{6}", output)
    assert found, output
    return found.group(0)


def _alert(project: Project, subject: str, *extra: str, at: datetime = NOW) -> str:
    """`digest alert` at ``at`` with a one-line body; the alert's id."""
    body = project.folder / "a.md"
    body.write_text("Vigil at six.")
    out = _cli(project, "alert", "--subject", subject, "--body", str(body), "--yes", *extra, at=at)
    return _alert_id(out)


def _console(project: Project) -> tuple[TestClient, str]:
    return signed_in(project.app(secrets=Secrets(secret_key=KEY)), STAFF, PASSWORD)


def test_command_line_send_of_the_week_reaches_digest_and_print_lists(everyone) -> None:
    _cli(everyone, "collect")
    _cli(everyone, "build")
    _cli(everyone, "send", "--yes")
    assert _got(everyone, WEEK) == WEEKLY_AUDIENCE


def test_a_list_of_another_kind_is_refused_in_one_line(everyone) -> None:
    _cli(everyone, "collect")
    _cli(everyone, "build")
    refused = _cli(everyone, "send", "--list", "alerts", "--yes", code=1)
    assert "'alerts' is of kind 'alerts'" in refused and len(refused.strip().splitlines()) == 1
    assert not (everyone.folder / "var" / "outbox" / WEEK).exists()


def test_command_line_alert_and_send_of_an_alert_reach_alert_lists_only(everyone) -> None:
    alert = _alert(everyone, "S")
    assert _got(everyone, alert) == ALERT_AUDIENCE
    # The reproduced bug: sending the alert again by id reached the weekly lists.
    _cli(everyone, "send", "--edition", alert, "--yes")
    assert _got(everyone, alert) == ALERT_AUDIENCE
    refused = _cli(everyone, "send", "--edition", alert, "--list", "weekly", "--yes", code=1)
    assert "an alert goes only to lists of kind 'alerts'" in refused
    assert _got(everyone, alert) == ALERT_AUDIENCE


def test_scheduled_weekly_send_reaches_digest_and_print_lists(everyone) -> None:
    assert run_weekly(everyone.app(NOW), holder="test") == f"{WEEK}: sent"
    assert _got(everyone, WEEK) == WEEKLY_AUDIENCE


def test_scheduled_alert_reaches_alert_lists_only(everyone) -> None:
    alert = _alert(everyone, "S", "--at", "18:00")
    with time_machine.travel(datetime.fromisoformat("2026-11-26T18:01-05:00"), tick=False):
        auto_send_job(str(everyone.config))
    assert _got(everyone, alert) == ALERT_AUDIENCE


def test_console_approve_reaches_digest_and_print_lists(everyone, monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_EDITION__REQUIRE_APPROVAL", "true")
    assert "awaiting approval" in run_weekly(everyone.app(NOW), holder="test")
    assert _got(everyone, f"preview-{WEEK}") == {"editor@example.org"}
    client, csrf = _console(everyone)
    data = {"csrf": csrf, "confirm": "yes"}
    with time_machine.travel(NOW, tick=False):
        assert client.post(f"/admin/editions/{WEEK}/approve", data=data).status_code == 303
        assert wait_for_background(timeout=30) == 0
    assert _got(everyone, WEEK) == WEEKLY_AUDIENCE


def test_console_send_now_reaches_digest_and_print_lists(everyone) -> None:
    _cli(everyone, "collect")
    _cli(everyone, "build")
    client, csrf = _console(everyone)
    asked = client.post(f"/admin/editions/{WEEK}/send", data={"csrf": csrf})
    assert f"to {len(WEEKLY_AUDIENCE)} recipients now?" in asked.text
    assert "Lists: Weekly, Print edition, Staff previews" in asked.text
    with time_machine.travel(NOW, tick=False):
        data = {"csrf": csrf, "confirm": "yes"}
        assert client.post(f"/admin/editions/{WEEK}/send", data=data).status_code == 303
        assert wait_for_background(timeout=30) == 0
    assert _got(everyone, WEEK) == WEEKLY_AUDIENCE


def test_console_alert_reaches_alert_lists_only(everyone) -> None:
    client, csrf = _console(everyone)
    form = {"csrf": csrf, "subject": "Vote tonight", "body": "Come.", "list": ""}
    with time_machine.travel(NOW, tick=False):
        asked = client.post("/admin/alerts", data={**form, "action": "send"})
        assert "to 2 recipients now?" in asked.text
        alert = re.search(r'name="alert" value="(alert-[0-9-]+)"', asked.text).group(1)
        sent = client.post("/admin/alerts", data={**form, "action": "confirm", "alert": alert})
        assert sent.status_code == 303
        assert wait_for_background(timeout=30) == 0
    assert _got(everyone, alert) == ALERT_AUDIENCE


# -- cancelled, failed ------------------------------------------------------------------


def test_a_scheduled_alert_cancelled_in_the_console_never_goes(everyone) -> None:
    alert = _alert(everyone, "S", "--at", "18:00")
    client, csrf = _console(everyone)
    page = client.get(f"/admin/editions/{alert}").text
    assert "to go Thursday 26 November 2026 at 18:00 EST" in page and "Cancel this send" in page
    done = client.post(f"/admin/editions/{alert}/cancel", data={"csrf": csrf, "note": "off"})
    assert done.status_code == 303
    assert "State: <strong>cancelled</strong>" in client.get(f"/admin/editions/{alert}").text
    for moment in ("2026-11-26T18:01-05:00", "2026-11-27T09:00-05:00"):
        with time_machine.travel(datetime.fromisoformat(moment), tick=False):
            auto_send_job(str(everyone.config))
    assert not (everyone.folder / "var" / "outbox" / alert).exists()


def test_a_weekly_job_that_raises_is_recorded_mailed_and_shown(everyone, monkeypatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(digest.lifecycle.weekly, "build", broken)
    outcome = run_weekly(everyone.app(NOW), holder="test")
    assert outcome == f"{WEEK}: failed: the disk is full"
    with everyone.engine().connect() as conn:
        last = editions.history(conn, WEEK)[0]
    assert (last.state, last.who) == ("failed", "scheduler") and "disk is full" in last.note
    notice = everyone.folder / "var" / "outbox" / f"notice-{WEEK}"
    [message] = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in notice.glob("*.eml")
    ]
    assert message["To"].addresses[0].addr_spec == "editor@example.org"  # the preview list
    text = message.get_body(("plain",)).get_content()
    assert "the disk is full" in text and f"digest send --edition {WEEK}" in text
    client, _ = _console(everyone)
    dashboard = client.get("/admin").text
    assert re.search(rf"{WEEK}</a> failed .*: the weekly job failed: the disk is full", dashboard)


def test_a_send_that_fails_is_recorded_and_retried_by_sending_again(everyone) -> None:
    _cli(everyone, "collect")
    _cli(everyone, "build")
    outbox = everyone.folder / "var" / "outbox"
    outbox.mkdir(parents=True)
    (outbox / WEEK).write_text("a file where the outbox folder should be")
    failed = _cli(everyone, "send", "--yes", code=1)
    assert "uncertain" in failed and "--resend-uncertain" in failed
    assert "failed" in _cli(everyone, "editions").split(WEEK)[1].splitlines()[0]
    (outbox / WEEK).unlink()
    _cli(everyone, "send", "--yes", "--resend-uncertain")
    assert _got(everyone, WEEK) == WEEKLY_AUDIENCE
    assert " sent " in _cli(everyone, "editions").split(WEEK)[1].splitlines()[0] + " "


def test_the_dashboard_shows_the_next_weekly_send_and_the_last_collect(everyone) -> None:
    _cli(everyone, "collect")
    client, _ = _console(everyone)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        page = client.get("/admin").text
    assert "Next weekly send: <strong>Thursday 03 December 2026 at 07:00 EST</strong>" in page
    assert "Last collect: Thu 26 Nov 2026 07:00 EST" in page


def test_an_alert_s_view_online_link_works_once_it_is_sent(everyone) -> None:
    waiting = _alert(everyone, "Later", "--at", "18:00")
    alert = _alert(everyone, "Vigil", at=NOW.replace(second=5))
    client = TestClient(create_app(everyone.app(secrets=Secrets(secret_key=KEY))))
    page = client.get(f"/archive/{alert}")
    assert page.status_code == 200 and "Vigil at six." in page.text
    assert f"/archive/{alert}" in page.text  # its own View online link, the one that works
    assert client.get(f"/archive/{waiting}").status_code == 404  # not sent yet: private
    assert alert not in client.get("/archive").text  # the index lists weekly editions
