"""The weekly email as sent, scored by Debian's SpamAssassin (local rules, no network
tests): the project's own templates must not look like spam."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import time_machine
from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import BASE_CONFIG, EXAMPLE_SOURCES, NOW, QUIET_CHECKS, ROOMY_PRINT
from tests.sendgrid_setup import KEY

pytestmark = pytest.mark.skipif(
    shutil.which("spamassassin") is None,
    reason="spamassassin is not installed (`make test` installs Debian's)",
)
STATUS = r"^X-Spam-Status: .*?score=(-?[\d.]+).*?tests=(.*?)\s+autolearn"
MOST = 0.5  # points: the project's own templates, on the examples' edition


def score(message: bytes) -> tuple[float, set[str]]:
    """``spamassassin -t -L``: the score and the rules hit."""
    out = subprocess.run(
        ["spamassassin", "-t", "-L"], input=message, capture_output=True, check=True, timeout=120
    ).stdout.decode("utf-8", "replace")
    status = re.search(
        r"^X-Spam-Status: .*?score=(-?[\d.]+).*?tests=(.*?)\s+autolearn", out, re.S | re.M
    )
    assert status, out[:500]
    return float(status[1]), {t.strip() for t in status[2].split(",") if t.strip()}


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("spam")
    # The checks are off: this test scores the message itself, once.
    (folder / "config.toml").write_text(BASE_CONFIG + EXAMPLE_SOURCES + ROOMY_PRINT + QUIET_CHECKS)
    (folder / "people.csv").write_text("email,name\nana@example.org,Ana\n")
    cfg = ["--config", str(folder / "config.toml")]
    with pytest.MonkeyPatch.context() as env, time_machine.travel(NOW, tick=False):
        for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY"):
            env.delenv(name, raising=False)
        env.setenv("DIGEST_SECRET_KEY", KEY)
        for args in (
            ["subscribers", "import", str(folder / "people.csv"), "--list", "weekly"],
            ["collect"],
            ["build"],
            ["send", "--yes"],
        ):
            result = CliRunner().invoke(app, [*args, *cfg])
            assert result.exit_code == 0, result.output
    (path,) = (folder / "var" / "outbox" / "2026-W48").glob("*.eml")
    return Path(path).read_bytes()


def test_the_weekly_email_scores_at_most_half_a_point(sent: bytes) -> None:
    points, rules = score(sent)
    assert points <= MOST, (points, sorted(rules))


def test_a_message_built_to_trip_a_rule_shows_it(sent: bytes) -> None:
    poison = b'<div style="display:none">' + b"x" * 1500 + b"</div>"
    html = sent.replace(b"<body", poison + b"<body", 1)
    assert html != sent
    _, rules = score(html)
    assert "LONG_INVISIBLE_TEXT" in rules, sorted(rules)
