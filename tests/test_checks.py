"""The checks before a send as a step of an edition's life: what `digest build` shows, a
blocking check holding every way to send (the command line, the scheduler, the console,
the automatic send after a deadline, an alert) until the edition is fixed or overridden
with a reason, and the staff preview that lists what the checks found."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.checks import spam
from digest.cli import app
from digest.config import Secrets
from digest.lifecycle.checking import report_of
from digest.lifecycle.weekly import auto_send_due, run_weekly
from digest.models import RenderedEmail
from digest.schedule import auto_send_job
from digest.staff.users import add_user
from digest.store import editions
from digest.store.tables import edition_events
from digest.web.console import wait_for_background
from tests.conftest import NOW, Project
from tests.console_setup import signed_in
from tests.hostile_server import Answer, HostileServer

KEY = "checks-test-secret-key-0123456789abcdef"
STAFF, PASSWORD = "staff@example.org", "a long staff password"
WEEK = "2026-W48"
READER, EDITOR = "reader@example.org", "editor@example.org"
REASON = "the council page moves back tomorrow"


@pytest.fixture
def site() -> Iterator[HostileServer]:
    with HostileServer() as server:
        server.routes["/report"] = Answer(200, body=b"the report")
        yield server  # anything else answers 404


def _note(folder: Path, *links: str) -> None:
    words = " and ".join(f"[page {i}]({url})" for i, url in enumerate(links, 1))
    (folder / "note.md").write_text(
        '---\ntitle: "From the editor"\ndate: 2026-11-25\neditor_note: true\n---\n\n'
        f"This week, read {words}.\n"
    )


def _project(make_project, tmp_path: Path, monkeypatch, site: HostileServer, links: str) -> Project:
    notes = tmp_path / "notes"
    notes.mkdir()
    _note(notes, site.url("/report"), site.url("/gone"))
    project = make_project(
        f"""
[sources.notes]
dir = "{notes}"

[[lists]]
slug = "staff"
name = "Staff previews"
kind = "digest"

[[lists]]
slug = "alerts"
name = "Alerts"
kind = "alerts"

[checks]
links = "{links}"
spam = "off"
allow_private_links = ["127.0.0.1:{site.port}"]
"""
    )
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    for slug, who in (("weekly", READER), ("staff", EDITOR), ("alerts", READER)):
        (tmp_path / f"{slug}.csv").write_text(f"email\n{who}\n")
        _cli(project, "subscribers", "import", str(tmp_path / f"{slug}.csv"), "--list", slug)
    add_user(project.engine(), STAFF, PASSWORD, who="test", now=NOW)
    return project


@pytest.fixture
def blocking(make_project, tmp_path, monkeypatch, site) -> Project:
    """This week's editor's note links to a page that is gone; [checks] links = "block"."""
    return _project(make_project, tmp_path, monkeypatch, site, "block")


def _cli(project: Project, *args: str, code: int = 0) -> str:
    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(app, [*args, "--config", str(project.config)])
    assert result.exit_code == code, result.output
    return result.output


def _got(project: Project, edition_id: str) -> dict[str, str]:
    """Who has the edition in the outbox: address → the message's text."""
    folder = project.folder / "var" / "outbox" / edition_id
    got = {}
    for path in folder.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = message.get_body(("plain",))
        got[message["To"].addresses[0].addr_spec] = text.get_content() if text else ""
    return got


def _history(project: Project) -> list[str]:
    with project.engine().connect() as conn:
        rows = conn.execute(sa.select(edition_events.c.note).order_by(edition_events.c.id))
        return [r.note for r in rows]


def _console(project: Project) -> tuple[TestClient, str]:
    return signed_in(project.app(secrets=Secrets(secret_key=KEY)), STAFF, PASSWORD)


def test_build_shows_each_link_with_its_item(blocking, site) -> None:
    _cli(blocking, "collect")
    out = _cli(blocking, "build")
    assert "links: block: 2 link(s) checked: 1 broken" in out
    assert f"broken: {site.url('/gone')} (HTTP 404) in Editor's note: From the editor" in out
    assert "accessibility: ok" in out and "spam: skipped" in out
    assert "held by its checks" in out


def test_a_held_edition_is_not_sent_until_overridden_with_a_reason(blocking, site) -> None:
    _cli(blocking, "collect")
    _cli(blocking, "build")
    assert "is held by its checks" in _cli(blocking, "send", "--dry-run")
    refused = _cli(blocking, "send", "--yes", code=1)
    assert f"edition {WEEK} is held by its checks (links: 2 link(s) checked: 1 broken)" in refused
    assert "--override REASON" in refused
    assert _got(blocking, WEEK) == {}
    asked = site.hits["/gone"]
    _cli(blocking, "send", "--yes", "--override", REASON)
    assert set(_got(blocking, WEEK)) == {READER, EDITOR}
    assert f"checks overridden (links): {REASON}" in _history(blocking)
    assert site.hits["/gone"] == asked  # the send used the day's results: nothing asked again


def test_fixing_the_edition_lifts_the_block(blocking, site, tmp_path) -> None:
    _cli(blocking, "collect")
    _cli(blocking, "build")
    _note(tmp_path / "notes", site.url("/report"))  # the editor takes the dead link out
    _cli(blocking, "collect")
    out = _cli(blocking, "build")
    assert "links: ok: 1 link(s) checked: all answer" in out, out
    assert site.hits["/report"] == 1  # asked once: the second build had it from the cache
    _cli(blocking, "send", "--yes")
    assert set(_got(blocking, WEEK)) == {READER, EDITOR}


def test_a_warning_shows_but_does_not_hold(make_project, tmp_path, monkeypatch, site) -> None:
    project = _project(make_project, tmp_path, monkeypatch, site, "warn")
    _cli(project, "collect")
    assert "links: warn: 2 link(s) checked: 1 broken" in _cli(project, "build")
    _cli(project, "send", "--yes")
    assert set(_got(project, WEEK)) == {READER, EDITOR}


def test_the_scheduled_send_is_held_and_the_console_override_lets_it_go(blocking, site) -> None:
    outcome = run_weekly(blocking.app(NOW), holder="test")
    assert outcome == f"{WEEK}: held by its checks, staff asked to fix or override"
    assert _got(blocking, WEEK) == {}
    # The staff preview starts with what the checks found, and where to decide.
    (preview,) = _got(blocking, f"preview-{WEEK}").values()
    assert preview.startswith("Held by its checks")
    assert "links (block): 2 link(s) checked: 1 broken" in preview
    assert f"https://digest.coalition.example.org/admin/editions/{WEEK}" in preview

    client, csrf = _console(blocking)
    assert (
        "awaiting approval</strong>, <strong>held by its checks</strong>"
        in client.get("/admin").text
    )
    page = client.get(f"/admin/editions/{WEEK}").text
    assert "Held by its checks:" in page and site.url("/gone") in page
    assert "in “Editor&#39;s note: From the editor”" in page
    assert "Approve and send" not in page
    with time_machine.travel(NOW, tick=False):
        forced = client.post(
            f"/admin/editions/{WEEK}/approve", data={"csrf": csrf, "confirm": "yes"}
        )
        assert "held by its checks" in forced.text
        assert wait_for_background(timeout=30) == 0
    assert _got(blocking, WEEK) == {}

    no_reason = client.post(f"/admin/editions/{WEEK}/override", data={"csrf": csrf, "reason": " "})
    assert "an override needs a reason" in no_reason.text
    done = client.post(f"/admin/editions/{WEEK}/override", data={"csrf": csrf, "reason": REASON})
    assert "Overridden" in done.text and "Approve and send" in done.text
    with time_machine.travel(NOW, tick=False):
        sent = client.post(f"/admin/editions/{WEEK}/approve", data={"csrf": csrf, "confirm": "yes"})
        assert sent.status_code == 303
        assert wait_for_background(timeout=30) == 0
    assert set(_got(blocking, WEEK)) == {READER, EDITOR}
    assert "held by its checks" not in client.get("/admin").text
    page = client.get(f"/admin/editions/{WEEK}").text
    assert f"checks overridden (links): {REASON} " in page or REASON in page
    assert f"checks overridden (links): {REASON}" in _history(blocking)


def test_the_automatic_send_after_a_deadline_waits_for_a_held_edition(
    blocking, monkeypatch
) -> None:
    monkeypatch.setenv("DIGEST_EDITION__AUTO_SEND_AFTER", "1h")
    run_weekly(blocking.app(NOW), holder="test")
    later = blocking.app(NOW + timedelta(hours=2))
    assert auto_send_due(later) == [WEEK]  # due, looked at, and left for staff
    assert _got(blocking, WEEK) == {}
    with blocking.engine().connect() as conn:
        assert editions.state_of(conn, WEEK) == "awaiting_approval"


def test_an_alert_is_held_by_a_blocking_check_too(blocking, site, tmp_path) -> None:
    body = tmp_path / "alert.md"
    body.write_text(f"Call the council today: [their page]({site.url('/gone')}).")
    out = _cli(blocking, "alert", "--subject", "Call now", "--body", str(body), "--yes", code=1)
    assert "is held by its checks (links:" in out


def test_changing_an_edition_makes_its_checks_out_of_date(blocking) -> None:
    _cli(blocking, "collect")
    _cli(blocking, "build")
    with blocking.engine().begin() as conn:
        assert not report_of(conn, WEEK).stale
        conn.execute(sa.text("UPDATE editions SET html = html || ' ' WHERE id = :i"), {"i": WEEK})
        assert report_of(conn, WEEK).stale


def test_spam_check_shows_the_rules_a_message_trips(make_project) -> None:
    if not spam.available():
        pytest.skip("spamassassin is not installed (`make test` installs Debian's)")
    settings = make_project("").settings()
    hidden = '<div style="display:none">' + "x " * 900 + "</div>"
    poisoned = RenderedEmail(
        "Hello", f'<html lang="en"><body>{hidden}<p>Hi there.</p></body></html>', "Hi there."
    )
    result = spam.score(spam.sample_message(settings, poisoned, NOW))
    assert "LONG_INVISIBLE_TEXT" in {r.name for r in result.rules}
    assert result.points > 0


def test_a_fix_at_the_desk_is_checked_again_when_approved(blocking, site, tmp_path) -> None:
    run_weekly(blocking.app(NOW), holder="test")
    _note(tmp_path / "notes", site.url("/report"))  # the editor takes the dead link out
    _cli(blocking, "collect")
    client, csrf = _console(blocking)
    with time_machine.travel(NOW, tick=False):
        page = client.post(f"/admin/editions/{WEEK}/rebuild", data={"csrf": csrf}).text
    assert "the edition changed since it was checked" in page
    assert "Held by its checks:" not in page and "Approve and send" in page
    with time_machine.travel(NOW, tick=False):
        sent = client.post(f"/admin/editions/{WEEK}/approve", data={"csrf": csrf, "confirm": "yes"})
        assert sent.status_code == 303
        assert wait_for_background(timeout=30) == 0
    assert set(_got(blocking, WEEK)) == {READER, EDITOR}
    with blocking.engine().connect() as conn:
        assert report_of(conn, WEEK).named("links").verdict == "ok"


def test_a_scheduled_alert_held_by_its_checks_is_not_sent_and_staff_are_told(
    blocking, site, tmp_path
) -> None:
    body = tmp_path / "alert.md"
    body.write_text(f"Call the council today: [their page]({site.url('/gone')}).")
    args = ("alert", "--subject", "Call now", "--body", str(body), "--yes", "--at", "18:00")
    out = _cli(blocking, *args)
    assert "links: block" in out and "held by its checks" in out
    alert = re.search(r"alert-\d{8}-\d{6}", out).group(0)
    with time_machine.travel(datetime.fromisoformat("2026-11-26T18:01-05:00"), tick=False):
        auto_send_job(str(blocking.config))
    assert _got(blocking, alert) == {}
    (notice,) = _got(blocking, f"notice-{alert}").values()
    assert "held by its checks" in notice
    with blocking.engine().connect() as conn:
        assert editions.state_of(conn, alert) == "failed"
    # A retry is checked too: the failure did not lift the block.
    assert "held by its checks" in _cli(blocking, "send", "--edition", alert, "--yes", code=1)


def test_the_spam_score_and_its_rules_are_shown(make_project, tmp_path, monkeypatch, site) -> None:
    if not spam.available():
        pytest.skip("spamassassin is not installed (`make test` installs Debian's)")
    project = _project(make_project, tmp_path, monkeypatch, site, "warn")
    text = project.config.read_text().replace('spam = "off"', 'spam = "block"')
    project.config.write_text(text)
    _cli(project, "collect")
    out = _cli(project, "build")
    score = re.search(r"spam: ok: (-?[\d.]+) points \(at most 5\)", out)
    assert score and float(score[1]) <= 0.5, out
    client, _ = _console(project)
    page = client.get(f"/admin/editions/{WEEK}").text
    assert "Every SpamAssassin rule it hit" in page and "<code>HTML_MESSAGE</code>" in page
