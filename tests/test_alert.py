"""Special alerts: rendered like the digest, sent at once through the same ledger."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from typer.testing import CliRunner

from digest.cli import app
from digest.schedule import auto_send_job
from tests.conftest import NOW
from tests.sendgrid_setup import API_KEY, KEY

LISTS = """
[[lists]]
slug = "alerts"
name = "Action alerts"
kind = "alerts"

[print]
default_profile = "short"

[[print.profiles]]
name = "short"
emessage_chars = 1200
ascii_only = true
"""
BODY = (
    """The hearing on **jail medication access** moved to *tomorrow*, 9:30 am.

Come to [Courtroom 14B](https://coalition.example.org/court/) and bring ID — it’s quick.

<script>alert(1)</script>

"""
    + "More details follow. " * 150
)


@pytest.fixture
def alerting(make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = make_project(LISTS)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,format\nana@example.org,Ana,html\nbo@example.org,Bo,text\n"
        "cy@example.org,Cy,print\n"
    )
    weekly = tmp_path / "weekly.csv"
    weekly.write_text("email\nweekly.only@example.org\n")
    body = tmp_path / "alert.md"
    body.write_text(BODY)
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    for args in (
        ["subscribers", "import", str(people), "--list", "alerts"],
        ["subscribers", "import", str(weekly), "--list", "weekly"],
    ):
        assert runner.invoke(app, [*args, *cfg]).exit_code == 0
    return project, runner, cfg, body


def _alert(runner, cfg, body: Path, *extra: str):
    with time_machine.travel(NOW, tick=False):
        return runner.invoke(
            app, ["alert", "--subject", "Court date moved", "--body", str(body), *extra, *cfg]
        )


def _outbox(project, alert: str) -> dict[str, email.message.EmailMessage]:
    out = {}
    for path in (project.folder / "var" / "outbox" / alert).glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[msg["To"].addresses[0].addr_spec] = msg
    return out


def test_an_alert_reaches_its_list_once_in_each_format(alerting) -> None:
    project, runner, cfg, body = alerting
    result = _alert(runner, cfg, body, "--yes")
    assert result.exit_code == 0, result.output
    alert = "alert-20261126-120000"
    messages = _outbox(project, alert)
    assert sorted(messages) == ["ana@example.org", "bo@example.org", "cy@example.org"]
    html = messages["ana@example.org"].get_body(("html",)).get_content()
    assert "<strong>jail medication access</strong>" in html and "<script" not in html
    assert "PO Box 1, Testville" in html and "/u/" in html
    assert messages["bo@example.org"].get_body(("html",)) is None
    printed = messages["cy@example.org"].get_body(("plain",)).get_content()
    assert len(printed.replace("\r\n", "\n")) <= 1200 and printed.isascii()
    assert "Unsubscribe: https://" in printed and "PO Box 1, Testville" in printed
    assert "did not fit" in printed
    state = json.loads(runner.invoke(app, ["status", alert, "--json", *cfg]).stdout)
    assert state["recipients"]["accepted"] == 3
    same_second = _alert(runner, cfg, body, "--yes")  # the same id: refused, nothing re-sent
    assert same_second.exit_code == 1 and "stored already" in same_second.output
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        again = runner.invoke(
            app, ["alert", "--subject", "Second", "--body", str(body), "--yes", *cfg]
        )
    assert again.exit_code == 0, again.output  # a second later: another alert, its own id
    second = _outbox(project, "alert-20261126-120001")
    assert sorted(second) == ["ana@example.org", "bo@example.org", "cy@example.org"]
    assert {m["Subject"] for m in second.values()} == {"Second"}
    assert len(_outbox(project, alert)) == 3


def test_dry_run_and_test_send_touch_no_list(alerting) -> None:
    project, runner, cfg, body = alerting
    dry = _alert(runner, cfg, body, "--dry-run")
    assert dry.exit_code == 0 and "recipients: 3" in dry.output and "nothing sent" in dry.output
    test = _alert(runner, cfg, body, "--test-to", "staff@example.org")
    assert test.exit_code == 0, test.output
    messages = _outbox(project, "test")
    assert list(messages) == ["staff@example.org"]
    assert messages["staff@example.org"]["Subject"] == "[TEST] Court date moved"
    assert not (project.folder / "var" / "outbox" / "alert-20261126-120000").exists()


def test_the_weekly_send_never_picks_an_alert(alerting, tmp_path) -> None:
    _, runner, cfg, body = alerting
    assert _alert(runner, cfg, body, "--yes").exit_code == 0
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1 and "no edition has been built" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\xff\xfe\x00bad", "UTF-8"), (None, "cannot read")],
)
def test_a_bad_body_file_is_one_clear_error(alerting, tmp_path, content, message) -> None:
    _, runner, cfg, _ = alerting
    body = tmp_path / "bad.md"
    if content is not None:
        body.write_bytes(content)
    result = _alert(runner, cfg, body, "--yes")
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_an_alert_through_sendgrid(alerting, monkeypatch, fake) -> None:
    _, runner, cfg, body = alerting
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("DIGEST_SENDGRID_HOST", fake.url)
    result = _alert(runner, cfg, body, "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(fake.accepted_counts()) == [
        "ana@example.org",
        "bo@example.org",
        "cy@example.org",
    ]
    assert {b["custom_args"]["digest_edition"] for b in fake.requests} == {"alert-20261126-120000"}


def _minute_job(project, at: str) -> None:
    """What digest serve runs every minute, at that local time of the test's day."""
    with time_machine.travel(datetime.fromisoformat(f"2026-11-26T{at}-05:00"), tick=False):
        auto_send_job(str(project.config))


def test_an_alert_at_a_later_time_waits_in_the_database(alerting) -> None:
    project, runner, cfg, body = alerting
    result = _alert(runner, cfg, body, "--yes", "--at", "18:30")
    assert result.exit_code == 0, result.output
    assert "Thursday 26 November 2026 18:30" in result.output
    alert = "alert-20261126-120000"
    assert not (project.folder / "var" / "outbox" / alert).exists()
    listed = runner.invoke(app, ["editions", *cfg]).output
    assert f"{alert}  scheduled (goes 2026-11-26 23:30 UTC)" in listed
    _minute_job(project, "18:29")
    assert not (project.folder / "var" / "outbox" / alert).exists()
    _minute_job(project, "18:31")
    assert sorted(_outbox(project, alert)) == [
        "ana@example.org",
        "bo@example.org",
        "cy@example.org",
    ]
    assert f"{alert}  sent" in runner.invoke(app, ["editions", *cfg]).output
    _minute_job(project, "18:32")  # nothing twice
    assert len(_outbox(project, alert)) == 3


def test_a_scheduled_alert_cancelled_from_the_command_line_never_goes(alerting) -> None:
    project, runner, cfg, body = alerting
    assert _alert(runner, cfg, body, "--yes", "--at", "18:30").exit_code == 0
    alert = "alert-20261126-120000"
    done = runner.invoke(app, ["cancel", alert, "--note", "vigil called off", *cfg])
    assert done.exit_code == 0 and "cancelled" in done.output
    _minute_job(project, "18:31")
    _minute_job(project, "23:00")
    assert not (project.folder / "var" / "outbox" / alert).exists()
    assert f"{alert}  cancelled" in runner.invoke(app, ["editions", *cfg]).output
    refused = runner.invoke(app, ["send", "--edition", alert, "--yes", *cfg])
    assert refused.exit_code == 1 and "is cancelled" in refused.output
    assert not (project.folder / "var" / "outbox" / alert).exists()


def test_an_alert_due_while_the_server_was_down_is_missed_not_sent_late(alerting) -> None:
    project, runner, cfg, body = alerting
    assert _alert(runner, cfg, body, "--yes", "--at", "13:00").exit_code == 0
    _minute_job(project, "23:00")  # ten hours late, past schedule.grace_minutes
    alert = "alert-20261126-120000"
    assert not (project.folder / "var" / "outbox" / alert).exists()
    listed = runner.invoke(app, ["editions", *cfg]).output
    assert f"{alert}  missed" in listed


@pytest.mark.parametrize("at", ["yesterday", "2026-11-20T10:00"])
def test_a_bad_or_past_time_is_refused(alerting, at: str) -> None:
    _, runner, cfg, body = alerting
    result = _alert(runner, cfg, body, "--yes", "--at", at)
    assert result.exit_code == 1 and "--at" in result.output


NUMBERED = """Three things to do before the hearing on Tuesday:

1. Call your council member and ask them to fund the two overdose prevention sites in the
spring budget.
2. Sign the [letter](https://coalition.example.org/letter/).
3. Come to the hearing:
   - bring photo ID, because the courthouse checks everyone at the door before they can go in;
   - arrive by 9:15.

And after the hearing:

7. Numbered from its own first number, with a wrapped line that must stay under its text.
9. Counted as the HTML counts them, whatever the source says.

> Withdrawal behind bars is not a side issue; it is a health emergency, the report says.
"""


def test_the_alerts_text_keeps_numbered_lists_numbered_and_indented() -> None:
    from digest.alert import render_alert
    from digest.config import Settings
    from digest.urls import Urls

    settings = Settings.model_validate(
        {"organisation": {"name": "Test Coalition", "postal_address": "PO Box 1, Testville"}}
    )
    urls = Urls(settings.delivery.base_url)
    email = render_alert(settings, urls, "Hearing", NUMBERED, alert="alert-1", now=NOW)
    text = email.text
    assert (
        "1. Call your council member and ask them to fund the two overdose\n"
        "   prevention sites in the spring budget.\n"
        "2. Sign the letter [1].\n"
        "3. Come to the hearing:\n"
        "   - bring photo ID, because the courthouse checks everyone at the door\n"
        "     before they can go in;\n"
        "   - arrive by 9:15.\n"
    ) in text
    assert (
        "7. Numbered from its own first number, with a wrapped line that must\n"
        "   stay under its text.\n"
        "8. Counted as the HTML counts them, whatever the source says.\n"
    ) in text
    assert (
        "> Withdrawal behind bars is not a side issue; it is a health emergency,\n"
        "> the report says.\n"
    ) in text
    assert "\n[1] https://coalition.example.org/letter/\n" in text
    assert all(len(line) <= 72 for line in text.split("\n") if "://" not in line)
    assert "<ol>" in email.html and "<li>Call your council member" in email.html
