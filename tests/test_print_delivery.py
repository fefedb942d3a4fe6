"""The print edition travels: built with the edition, attached for print members, once each."""

from __future__ import annotations

import base64
import email
import email.policy
import json
from pathlib import Path

import jsonschema
import pytest
import time_machine
from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import EXAMPLE_SOURCES, NOW
from tests.fake_sendgrid import mail_send_schema
from tests.sendgrid_setup import API_KEY, KEY

PRINT_LISTS = """
[[lists]]
slug = "inside"
name = "Inside"
kind = "print"

[print]
default_profile = "letter6"

[[print.profiles]]
name = "letter6"
page_cap = 6

[[print.profiles]]
name = "jpay"
paper = "a4"
page_cap = 2
emessage_chars = 6000
ascii_only = true
"""


@pytest.fixture
def printed(make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = make_project(EXAMPLE_SOURCES + PRINT_LISTS)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    people = tmp_path / "inside.csv"
    people.write_text(
        "email,name,profile\nann@example.org,Ann,letter6\nbo@example.org,Bo,jpay\n"
        "cy@example.org,Cy,\n"
    )
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    with time_machine.travel(NOW, tick=False):
        for args in (
            ["subscribers", "import", str(people), "--list", "inside"],
            ["collect"],
            ["build", "--out", str(tmp_path / "out")],
        ):
            result = runner.invoke(app, [*args, *cfg])
            assert result.exit_code == 0, result.output
    return project, runner, cfg, tmp_path / "out"


def test_build_writes_a_pdf_and_parts_per_profile(printed) -> None:
    _, _, _, out = printed
    for profile in ("letter6", "jpay"):
        assert (out / f"print-{profile}.pdf").read_bytes().startswith(b"%PDF")
        parts = sorted(out.glob(f"emessage-{profile}-*.txt"))
        assert parts and parts[0].read_text().startswith(f"Part 1 of {len(parts)}")
    for part in out.glob("emessage-jpay-*.txt"):
        text = part.read_text()
        assert len(text) <= 6000 and text.isascii()


def test_print_members_get_their_profiles_files_through_the_outbox(printed) -> None:
    project, runner, cfg, out = printed
    result = runner.invoke(app, ["send", "--list", "inside", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    folder = project.folder / "var" / "outbox" / "2026-W48"
    messages = {}
    for path in folder.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        messages[msg["To"].addresses[0].addr_spec] = msg
    assert sorted(messages) == ["ann@example.org", "bo@example.org", "cy@example.org"]
    for address, profile in (
        ("ann@example.org", "letter6"),
        ("bo@example.org", "jpay"),
        ("cy@example.org", "letter6"),
    ):
        msg = messages[address]
        names = [part.get_filename() for part in msg.iter_attachments()]
        assert names[0] == f"print-{profile}.pdf"
        assert all(n.startswith(f"emessage-{profile}-") for n in names[1:])
        pdf = next(msg.iter_attachments()).get_content()
        assert pdf == (out / f"print-{profile}.pdf").read_bytes()
        body = msg.get_body(("plain",)).get_content()
        assert "(print edition)" in msg["Subject"]
        assert "PO Box 1, Testville" in body and "/u/" in body
        assert msg.get_body(("html",)) is None
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_print_members_through_sendgrid_get_attachments_once(printed, monkeypatch, fake) -> None:
    _, runner, cfg, out = printed
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("DIGEST_SENDGRID_HOST", fake.url)
    result = runner.invoke(app, ["send", "--list", "inside", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    schema = mail_send_schema()
    assert len(fake.requests) == 2  # one request per profile variant
    for body in fake.requests:
        jsonschema.validate(body, schema)
        assert [c["type"] for c in body["content"]] == ["text/plain"]
        files = {a["filename"]: a for a in body["attachments"]}
        pdf = next(name for name in files if name.endswith(".pdf"))
        assert base64.b64decode(files[pdf]["content"]) == (out / pdf).read_bytes()
    assert set(fake.accepted_counts().values()) == {1}
    state = json.loads(runner.invoke(app, ["status", "--json", *cfg]).stdout)
    assert state["recipients"]["accepted"] == 3


def test_files_too_big_for_sendgrid_fail_the_batch_clearly(make_project) -> None:
    from digest.dispatch.batch import OutgoingBatch
    from digest.dispatch.sendgrid import SendGridTransport
    from digest.models import Attachment, RenderedEmail

    settings = make_project().settings()
    huge = Attachment("print-default.pdf", "application/pdf", b"%PDF" + b"0" * 16_000_000)
    batch = OutgoingBatch("2026-W48", 1, "print:default", RenderedEmail("s", "", "t"), [], (huge,))
    outcome = SendGridTransport(settings, "SG.key", "http://127.0.0.1:9").send(batch)
    assert outcome.kind == "failed"
    assert "16.0 MB" in outcome.reason and "page_cap" in outcome.reason
