"""Two schedulers on one database, and an alert during a weekly send: real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.sendgrid_setup import prepare
from tests.waiting import wait_until

TIMEOUT = 120
WEEKLY = """
import sys
from pathlib import Path
from datetime import datetime
from zoneinfo import ZoneInfo
from digest.context import open_app
from digest.lifecycle.weekly import run_weekly
app = open_app(Path(sys.argv[1]))
now = datetime(2026, 11, 26, 7, 0, tzinfo=ZoneInfo("America/New_York"))
app.clock = lambda: now
print(run_weekly(app, holder=sys.argv[2]))
"""


def _weekly(config: Path, holder: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WEEKLY, str(config), holder],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_schedulers_send_one_edition_once(
    make_project, tmp_path, monkeypatch, fake, database_url
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)  # SQLite, then PostgreSQL
    project, _, _ = prepare(make_project, tmp_path, monkeypatch, fake.url, 600, batch=50)
    fake.faults.latency = 0.02
    first, second = _weekly(project.config, "serve-a"), _weekly(project.config, "serve-b")
    outputs = [p.communicate(timeout=TIMEOUT)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert sorted(o.strip().split(": ", 1)[1] for o in outputs) == [
        "another process is running this week's job",
        "sent",
    ]
    counts = fake.accepted_counts()
    assert len(counts) == 600 and set(counts.values()) == {1}


def test_an_alert_does_not_wait_behind_a_weekly_send(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    project, _, _ = prepare(
        make_project,
        tmp_path,
        monkeypatch,
        fake.url,
        2000,
        batch=100,
        concurrency=1,
        timeout=5.0,  # the fake answers after 0.6 s: a loaded machine must not time it out
    )
    alerts = tmp_path / "alerts.csv"
    alerts.write_text("email\nalert-only@example.org\n")
    config = project.config.read_text() + (
        '\n[[lists]]\nslug = "alerts"\nname = "Alerts"\nkind = "alerts"\n'
    )
    project.config.write_text(config)
    digest = [sys.executable, "-m", "digest"]
    cfg = ["--config", str(project.config)]
    subprocess.run(
        [*digest, "subscribers", "import", str(alerts), "--list", "alerts", *cfg],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )
    body = tmp_path / "alert.md"
    body.write_text("Vigil tonight at 6.")
    # The weekly send takes about 12 s: longer than starting another process and
    # rendering an alert takes on a loaded machine.
    fake.faults.latency = 0.6
    weekly = subprocess.Popen(
        [*digest, "send", "--yes", *cfg],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_until("the weekly send's first batch", lambda: bool(fake.accepted), proc=weekly)
    alert = subprocess.run(
        [*digest, "alert", "--subject", "Vigil tonight", "--body", str(body), "--yes", *cfg],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    still_sending = weekly.poll() is None
    out = weekly.communicate(timeout=TIMEOUT)[0]
    assert alert.returncode == 0, alert.stdout + alert.stderr
    assert still_sending, "the weekly send ended before the alert: make it slower"
    assert weekly.returncode == 0, out
    counts = fake.accepted_counts()
    assert counts["alert-only@example.org"] == 1 and len(counts) == 2001
