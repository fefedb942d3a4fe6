"""What a monitor sees: ``GET /healthz`` (200 when all is well, 503 with the reason when
not, nothing personal), and `digest serve --log-format json`: a JSON object a line, the
edition and batch named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.cli import app
from digest.config import Secrets
from digest.lifecycle.states import State, transition
from digest.schedule import SCHEDULER_BEAT
from digest.store import operations
from digest.web.app import create_app
from tests.conftest import BASE_CONFIG, EXAMPLE_SOURCES, NOW, QUIET_CHECKS, ROOMY_PRINT, Project
from tests.served import free_port

KEY = "health-test-secret-key-0123456789abcdef"
WEEK = "2026-W48"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' week collected and built at NOW, one reader on the list: made once,
    each test gets a copy."""
    folder = tmp_path_factory.mktemp("health")
    config = textwrap.dedent(BASE_CONFIG) + EXAMPLE_SOURCES + ROOMY_PRINT + QUIET_CHECKS
    (folder / "config.toml").write_text(config)
    (folder / "people.csv").write_text("email,name\nreader@example.org,Rae Reader\n")
    with pytest.MonkeyPatch.context() as env:
        for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY"):
            env.delenv(name, raising=False)
        env.setenv("DIGEST_SECRET_KEY", KEY)
        for args in (
            ["subscribers", "import", str(folder / "people.csv"), "--list", "weekly"],
            ["collect"],
            ["build"],
        ):
            with time_machine.travel(NOW, tick=False):
                result = CliRunner().invoke(app, [*args, "--config", str(folder / "config.toml")])
            assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def project(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    shutil.copytree(built, tmp_path / "p")
    return Project(tmp_path / "p")


def _beat(project: Project, at) -> None:
    with project.engine().begin() as conn:
        operations.beat(conn, SCHEDULER_BEAT, at)


def _health(project: Project, at) -> httpx.Response:
    client = TestClient(create_app(project.app(at, Secrets(secret_key=KEY))))
    return client.get("/healthz")


def test_all_well_is_200_and_says_nothing_personal(project) -> None:
    _beat(project, NOW)
    answer = _health(project, NOW + timedelta(minutes=1))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["database"] == "ok"
    assert body["latest_edition"] == {"id": WEEK, "state": "built"}
    assert body["scheduler"]["age_seconds"] == 60
    assert body["last_collect"]["age_seconds"] == 60
    assert body["last_backup"] == {"at": None, "age_seconds": None}
    assert "@" not in answer.text and "Rae" not in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_a_collect_older_than_two_days_is_503(project) -> None:
    later = NOW + timedelta(days=3)
    _beat(project, later)
    answer = _health(project, later)
    assert answer.status_code == 503
    assert answer.json()["problems"] == ["the last collect was 72 hours ago (more than 2 days)"]


def test_a_scheduler_that_stopped_is_503(project) -> None:
    _beat(project, NOW - timedelta(minutes=10))
    answer = _health(project, NOW)
    assert answer.status_code == 503
    assert answer.json()["problems"] == ["the scheduler has not run for 10 minutes"]


def test_a_failed_backup_and_a_failed_edition_are_503(project) -> None:
    _beat(project, NOW)
    with project.engine().begin() as conn:
        operations.record_backup(conn, operations.Backup(NOW, "/x", 0, False, "disk full"))
        transition(conn, WEEK, State.FAILED, who="test", now=NOW, note="SendGrid said no")
    problems = _health(project, NOW).json()["problems"]
    assert problems == [
        "the last backup failed: see 'digest backup'",
        f"edition {WEEK} failed: see 'digest status {WEEK}'",
    ]


@pytest.mark.parametrize("damage", ["garbage", "gone"])
def test_a_database_file_that_cannot_be_read_is_503(project, damage) -> None:
    _beat(project, NOW)
    ctx = project.app(NOW, Secrets(secret_key=KEY))
    client = TestClient(create_app(ctx))
    assert client.get("/healthz").status_code == 200  # the pool holds the file open now
    database = project.folder / "var" / "digest.db"
    if damage == "garbage":
        database.write_bytes(b"this is not a database " * 1000)
    else:
        database.unlink()
    answer = client.get("/healthz")
    assert answer.status_code == 503
    (problem,) = answer.json()["problems"]
    assert problem.startswith("the database does not answer (")
    assert not database.exists() or damage == "garbage"  # nothing created in its place


def test_serve_answers_healthz_and_logs_json_with_the_edition(project) -> None:
    with project.engine().begin() as conn:  # approved before a restart: serve resumes it
        transition(conn, WEEK, State.AWAITING, who="test", now=NOW)
        transition(conn, WEEK, State.APPROVED, who="test", now=NOW)
    # The serve below runs on the real clock: a collect now, so the last one is not old.
    result = CliRunner().invoke(app, ["collect", "--config", str(project.config)])
    assert result.exit_code == 0, result.output
    port = free_port()
    env = {**os.environ, "DIGEST_SECRET_KEY": KEY}
    argv = [sys.executable, "-m", "digest", "serve", "--port", str(port), "--log-format", "json"]
    log = project.folder / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [*argv, "--config", str(project.config)], stdout=subprocess.DEVNULL, stderr=out, env=env
        )
        try:
            answer = _wait_for_health(port, serve)
            assert answer.status_code == 200, answer.text
            _wait_for_line(log, '"batch"', serve)
        finally:
            serve.terminate()
            serve.wait(timeout=60)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert all({"time", "local_time", "level", "logger", "message"} <= set(x) for x in lines)
    batch = next(x for x in lines if "batch" in x)
    assert batch["edition"] == WEEK and batch["batch"] == 1
    assert batch["local_time"].endswith(("-05:00", "-04:00"))  # the organisation's zone
    assert any(x["logger"] == "uvicorn.access" and "/healthz" in x["message"] for x in lines)


def _wait_for_health(port: int, proc: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "digest serve stopped"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("digest serve never answered")


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.2)
