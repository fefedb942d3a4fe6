"""The command line end to end: the demo, usage errors, and the README covering every command."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import ROOT


def test_demo_runs_the_whole_job_and_prints_where_the_files_are(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    html = tmp_path / "demo" / "edition" / "email.html"
    assert str(html) in result.output
    assert html.read_text().startswith("<!DOCTYPE html>")
    emls = sorted((tmp_path / "demo" / "var" / "outbox" / "2026-W48").glob("*.eml"))
    # six sample subscribers, two staff, two print contacts, six people inside (by their
    # contacts' addresses)
    assert len(emls) == 16
    for path in emls:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert msg["To"].addresses[0].domain == "example.org"
        assert "PO Box 4417" in msg.get_body(("plain",)).get_content()
    run = tmp_path / "demo" / "print-run"
    assert str(run) in result.output
    # five of the six people inside have an address (the sixth gets the email alone)
    assert (run / "manifest.csv").read_text().splitlines()[-1] == "(all),(all),5,7,35"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--no-such-flag"])
    assert result.exit_code == 2


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()

    def name(c) -> str:
        return c.name or c.callback.__name__.replace("_", "-")

    commands = [name(c) for c in app.registered_commands]
    commands += [
        f"{g.name} {name(c)}"
        for g in app.registered_groups
        for c in g.typer_instance.registered_commands
    ]
    assert commands
    for name in commands:
        assert re.search(rf"`digest {name}\b", readme), f"README does not document 'digest {name}'"


def test_readme_starts_with_the_two_commands() -> None:
    first_lines = (ROOT / "README.md").read_text().splitlines()[:12]
    joined = "\n".join(first_lines)
    assert "make demo" in joined and "make test" in joined
