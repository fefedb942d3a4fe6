"""Shared fixtures: a throwaway project folder, the shared corpus, a pinned clock."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from digest.config import Settings, load_settings
from digest.store import open_engine

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
EXAMPLES = ROOT / "examples"
ZONE = ZoneInfo("America/New_York")
# The week the bundled examples were written for (a Thursday morning).
NOW = datetime(2026, 11, 26, 7, 0, tzinfo=ZONE)

BASE_CONFIG = """
[organisation]
name = "Test Coalition"
postal_address = "PO Box 1, Testville, NY 10001"
website = "https://coalition.example.org"
reply_to = "news@coalition.example.org"
timezone = "America/New_York"

[delivery]
from_email = "news@coalition.example.org"
base_url = "https://digest.coalition.example.org"

[[lists]]
slug = "weekly"
name = "Weekly"
kind = "digest"
"""


@pytest.fixture
def corpus() -> Path:
    """The shared third-party corpus (feeds, calendars, SendGrid spec), or a clear skip."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the checkout)")
    return CORPUS


@dataclass
class Project:
    """A config.toml in a temporary folder, with its settings and database."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "config.toml"

    def settings(self, **overrides: object) -> Settings:
        return load_settings(self.config, **overrides)

    def engine(self) -> Engine:
        s = self.settings()
        return open_engine(s.database_url, s.base_dir)


@pytest.fixture
def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Project]:
    """make_project(extra_toml) writes BASE_CONFIG + extra_toml to tmp_path/config.toml."""
    for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY", "DIGEST_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)

    def make(extra: str = "") -> Project:
        text = textwrap.dedent(BASE_CONFIG) + textwrap.dedent(extra)
        (tmp_path / "config.toml").write_text(text, encoding="utf-8")
        return Project(tmp_path)

    return make
