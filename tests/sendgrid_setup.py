"""A project ready to send through the fake SendGrid: examples collected, edition built."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import time_machine
from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import API_KEY, EXAMPLE_SOURCES, NOW, Project

__all__ = ["API_KEY", "KEY", "prepare"]

KEY = "sendgrid-test-secret-key-0123456789"


def prepare(
    make_project: Callable[[str], Project],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_url: str,
    people: int,
    *,
    batch: int = 1000,
    timeout: float = 1.0,
    concurrency: int = 4,
) -> tuple[Project, CliRunner, list[str]]:
    """``people`` subscribers (every seventh text-only) on the weekly list; the 2026-W48
    edition built; the environment pointing digest at the fake. Returns the project, a
    CLI runner and the ``--config`` arguments."""
    project = make_project(EXAMPLE_SOURCES)
    for name, value in {
        "SENDGRID_API_KEY": API_KEY,
        "DIGEST_SENDGRID_HOST": fake_url,
        "DIGEST_SECRET_KEY": KEY,
        "DIGEST_DELIVERY__BATCH_SIZE": str(batch),
        "DIGEST_DELIVERY__CONCURRENCY": str(concurrency),
        "DIGEST_DELIVERY__TIMEOUT_SECONDS": str(timeout),
        "DIGEST_DELIVERY__RETRY_BASE_SECONDS": "0.01",
        "DIGEST_DELIVERY__MAX_ATTEMPTS": "8",
    }.items():
        monkeypatch.setenv(name, value)
    csv_file = tmp_path / "people.csv"
    rows = "".join(
        f"person{i}@example.org,Person {i},{'text' if i % 7 == 0 else 'html'}\n"
        for i in range(people)
    )
    csv_file.write_text("email,name,format\n" + rows)
    share_render_cache(project, tmp_path.parent / "render-cache")
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    with time_machine.travel(NOW, tick=False):
        for args in (
            ["subscribers", "import", str(csv_file), "--list", "weekly"],
            ["collect"],
            ["build"],
        ):
            result = runner.invoke(app, [*args, *cfg])
            assert result.exit_code == 0, result.output
    return project, runner, cfg


def share_render_cache(project: Project, shared: Path) -> None:
    """Point the project's render cache at ``shared``, one folder for the test session (a
    worker's, under xdist): the cache is keyed by everything that goes into a rendering, so
    the same examples' week is laid out once, not once a test."""
    shared.mkdir(exist_ok=True)
    cache = project.settings().var_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "render").symlink_to(shared, target_is_directory=True)
