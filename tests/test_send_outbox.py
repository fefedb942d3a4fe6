"""Delivering an edition to the outbox: one correct .eml per recipient, never twice."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.audience.tokens import Keyring
from digest.cli import app
from tests.conftest import EXAMPLES, NOW

SOURCES = f"""
[[sources.feeds]]
name = "news"
url = "{EXAMPLES / "feeds" / "news.xml"}"

[[lists]]
slug = "other"
name = "Other"
kind = "digest"
"""
KEY = "test-secret-key-0123456789abcdef"


@pytest.fixture
def ready(make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A project with items collected, the W48 edition built and three subscribers."""
    import time_machine

    project = make_project(SOURCES)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,format\n"
        "ana@example.org,Ana <Admin> & Co,html\n"
        "bo@example.org,Bo,text\n"
        "cy@example.org,Cy,html\n"
    )
    other = tmp_path / "other.csv"
    other.write_text("email\nana@example.org\n")
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    with time_machine.travel(NOW, tick=False):
        for args in (
            ["subscribers", "import", str(people), "--list", "weekly"],
            ["subscribers", "import", str(other), "--list", "other"],
            ["collect"],
            ["build"],
        ):
            result = runner.invoke(app, [*args, *cfg])
            assert result.exit_code == 0, result.output
    return project, runner, cfg


def _messages(project) -> dict[str, email.message.EmailMessage]:
    folder = project.folder / "var" / "outbox" / "2026-W48"
    out = {}
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        out[msg["To"].addresses[0].addr_spec] = msg
    return out


def test_one_message_per_recipient_even_on_two_lists(ready) -> None:
    project, runner, cfg = ready
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    assert "new recipients: 3" in result.output
    assert sorted(_messages(project)) == ["ana@example.org", "bo@example.org", "cy@example.org"]


def test_html_messages_are_multipart_text_first_and_text_members_get_text(ready) -> None:
    project, runner, cfg = ready
    runner.invoke(app, ["send", "--yes", *cfg])
    messages = _messages(project)
    ana = messages["ana@example.org"]
    assert ana.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in ana.iter_parts()] == ["text/plain", "text/html"]
    assert messages["bo@example.org"].get_content_type() == "text/plain"
    for msg in messages.values():
        assert msg["Message-ID"] and msg["Date"]
        assert msg["From"].addresses[0].addr_spec == "news@coalition.example.org"
        assert msg["Reply-To"] == "news@coalition.example.org"


def test_list_unsubscribe_is_plain_signed_and_personal(ready) -> None:
    project, runner, cfg = ready
    runner.invoke(app, ["send", "--yes", *cfg])
    folder = project.folder / "var" / "outbox" / "2026-W48"
    raw = next(folder.glob("*ana@example.org.eml")).read_bytes()
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    header = str(msg["List-Unsubscribe"])
    assert header.startswith("<https://digest.coalition.example.org/u/")
    assert ">, <mailto:news@coalition.example.org?subject=unsubscribe" in header
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = header.split("/u/", 1)[1].split(">", 1)[0]
    claims = Keyring(KEY.encode()).check(token, "unsubscribe", now=NOW)
    assert claims is not None and claims.list_slug == "other"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    for body in (html, text):
        assert "-unsubscribe_url-" not in body and "-preferences_url-" not in body
        assert f"/u/{token}" in body
    other = _messages(project)["cy@example.org"]
    assert token not in str(other["List-Unsubscribe"])


def test_running_send_again_sends_nobody_twice(ready) -> None:
    project, runner, cfg = ready
    runner.invoke(app, ["send", "--yes", *cfg])
    folder = project.folder / "var" / "outbox" / "2026-W48"
    before = {p.name: p.read_bytes() for p in folder.glob("*.eml")}
    again = runner.invoke(app, ["send", "--yes", *cfg])
    assert again.exit_code == 0
    assert "new recipients: 0" in again.output and "already accepted: 3" in again.output
    assert {p.name: p.read_bytes() for p in folder.glob("*.eml")} == before


def test_dry_run_and_single_list(ready) -> None:
    project, runner, cfg = ready
    dry = runner.invoke(app, ["send", "--dry-run", "--list", "other", *cfg])
    assert dry.exit_code == 0 and "new recipients: 1" in dry.output
    assert "nothing sent" in dry.output
    assert _messages(project) == {}


def test_send_without_a_built_edition_says_what_to_do(make_project) -> None:
    project = make_project()
    result = CliRunner().invoke(app, ["send", "--yes", "--config", str(project.config)])
    assert result.exit_code == 1
    assert "digest build" in result.output and "Traceback" not in result.output


def test_send_names_an_edition_that_was_never_built(ready) -> None:
    _, runner, cfg = ready
    result = runner.invoke(app, ["send", "--yes", "--edition", "2026-W40", *cfg])
    assert result.exit_code == 1
    assert "'2026-W40' has not been built" in result.output


def test_sending_never_renders_again(ready, monkeypatch) -> None:
    """The edition is rendered once, at build time, however many recipients there are."""
    project, runner, cfg = ready

    def no_render(*_args, **_kwargs):
        raise AssertionError("rendered during send")

    # Where every render goes, looked up at call time: MJML, the CSS inliner, the PDF.
    for target in (
        "digest.render.html.mjml2html",
        "premailer.Premailer.transform",
        "weasyprint.HTML.render",  # every print layout starts here
    ):
        monkeypatch.setattr(target, no_render)
    from digest.render import render_email
    from tests.golden_edition import golden_edition, golden_settings

    with pytest.raises(AssertionError, match="rendered during send"):  # the traps work
        render_email(golden_edition(), golden_settings())
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    assert len(_messages(project)) == 3


def test_without_a_secret_key_nothing_is_sent(ready, monkeypatch) -> None:
    project, runner, cfg = ready
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1 and "DIGEST_SECRET_KEY is not set" in result.output
    assert _messages(project) == {}


def test_suppressed_get_nothing_and_print_members_get_the_print_edition(ready) -> None:
    project, runner, cfg = ready
    from digest.store import audience as store

    with project.engine().begin() as conn:
        store.suppress(
            conn, "cy@example.org", "cy@example.org", reason="bounce", origin="test", now=NOW
        )
        store.update_membership(conn, 2, "weekly", format="print")
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    messages = _messages(project)
    assert sorted(messages) == ["ana@example.org", "bo@example.org"]
    printed = messages["bo@example.org"]
    assert "(print edition)" in printed["Subject"]
    assert next(a.get_filename() for a in printed.iter_attachments()) == "print-default.pdf"


def test_a_batch_that_cannot_be_recorded_stops_the_send_and_says_so(ready, monkeypatch) -> None:
    import sqlalchemy as sa

    import digest.dispatch.run as run_module

    _, runner, cfg = ready
    real = run_module.ledger.finish

    def broken(conn, batch_id, state, now, **values):  # the database refused the write
        raise sa.exc.OperationalError("UPDATE batches", {}, Exception("disk I/O error"))

    monkeypatch.setattr(run_module.ledger, "finish", broken)
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1
    assert "could not be recorded" in result.output and "marks it uncertain" in result.output
    monkeypatch.setattr(run_module.ledger, "finish", real)
    state = json.loads(runner.invoke(app, ["status", "--json", *cfg]).output)
    # Left in flight (the next send, from a new process, marks them uncertain), none lost.
    assert state["batches"]["in_flight"] >= 1
    assert state["batches"]["in_flight"] + state["batches"]["pending"] == 2
