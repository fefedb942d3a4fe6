"""`digest build` in a fresh process loads only what the build needs (issue 18): no Alembic
when the schema is current, no fetcher or parsers (it collects nothing), no checker whose
check is off, and, rebuilt with nothing changed, no renderer; every result stays the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from digest.collect import collect
from digest.store.db import MIGRATIONS, head_revision
from tests.conftest import EXAMPLE_SOURCES, NOW, write_project

ROOT = Path(__file__).resolve().parents[1]
# Run `digest ...` and, on the way out, list the top-level packages it imported.
WRAPPER = """
import runpy, sys
sys.argv = ["digest", *sys.argv[1:]]
try:
    runpy.run_module("digest", run_name="__main__", alter_sys=True)
finally:
    print("IMPORTED", *sorted({m.split(".")[0] for m in sys.modules}), file=sys.stderr)
"""
HEAVY_FOR_A_REBUILD = {
    "alembic",  # the schema is current
    "httpx",  # nothing is fetched, the links check is off
    "icalendar",
    "feedparser",
    "markdown_it",
    "yaml",
    "premailer",  # the email comes from the render cache
    "weasyprint",  # and the PDF
    "jinja2",  # (lxml is the accessibility check's, on here)
    "mjml",
}


def digest(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SENDGRID"))}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args, "--config", str(project / "config.toml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.splitlines()
    imported = set(lines[-1].split()[1:]) if lines and lines[-1].startswith("IMPORTED") else set()
    return done, imported


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fast")
    made = write_project(folder, EXAMPLE_SOURCES)
    collect(made.settings(), made.engine(), NOW)
    return folder


def test_the_newest_migration_is_read_from_the_files_as_alembic_reads_it() -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert [head_revision()] == ScriptDirectory.from_config(cfg).get_heads()


def test_a_rebuild_with_nothing_changed_imports_none_of_the_heavy_packages(
    collected: Path,
) -> None:
    build = ("build", "--week", "2026-W48", "--force", "--out", str(collected / "out"))
    first, first_imported = digest(collected, *build)
    assert first.returncode == 0, first.stderr
    written = {p.name: p.read_bytes() for p in (collected / "out").iterdir()}
    again, imported = digest(collected, *build)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert {p.name: p.read_bytes() for p in (collected / "out").iterdir()} == written
    assert imported, again.stderr
    assert imported & HEAVY_FOR_A_REBUILD == set()
    assert {"premailer", "weasyprint"} <= first_imported  # the first build did render


def test_a_database_behind_this_code_is_still_upgraded_when_opened(collected: Path) -> None:
    made = write_project(collected, EXAMPLE_SOURCES)
    engine = made.engine()
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")  # as if this code's newest migration were new
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() != (
            head_revision()
        )
    done, imported = digest(collected, "editions")
    assert done.returncode == 0, done.stderr
    assert "alembic" in imported
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert version == head_revision()


def test_the_command_line_still_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "digest", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0
    for name in ("collect", "build", "send", "status", "serve", "check", "subscribers"):
        assert name in done.stdout
