"""Shared fixtures: a throwaway project folder, the shared corpus, a pinned clock."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.audience.importer import ImportReport, import_csv
from digest.config import Secrets, Settings, load_settings
from digest.context import App
from digest.store import open_engine
from tests.fake_sendgrid import FakeSendGrid, Faults

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
EXAMPLES = ROOT / "examples"
ZONE = ZoneInfo("America/New_York")
# The week the bundled examples were written for (a Thursday morning).
NOW = datetime(2026, 11, 26, 7, 0, tzinfo=ZONE)
API_KEY = "SG.test-key"  # what the fake SendGrid takes

# The bundled example sources, as config.toml lines.
EXAMPLE_SOURCES = f"""
[[sources.feeds]]
name = "news"
url = "{EXAMPLES / "feeds" / "news.xml"}"
section = "news"

[[sources.feeds]]
name = "stories"
url = "{EXAMPLES / "feeds" / "blog.atom"}"
section = "stories"

[[sources.calendars]]
name = "events"
url = "{EXAMPLES / "calendar.ics"}"

[sources.notes]
dir = "{EXAMPLES / "notes"}"
"""

# A test that is not about print gets room for the examples' whole print edition, so a
# build lays it out once instead of searching for what to leave out (the print tests set
# their own caps).
ROOMY_PRINT = """
[[print.profiles]]
name = "default"
page_cap = 12
"""

# Tests that are not about the checks before a send skip the slow ones (SpamAssassin
# takes 3 s a message; the examples' links point at made-up hosts).
QUIET_CHECKS = """
[checks]
links = "off"
spam = "off"
"""

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


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """Staff passwords hashed at argon2id's lightest cost in this process (the production
    cost takes 64 MiB and a tenth of a second a sign-in, and the console's tests sign in
    hundreds of times). A test about how long a sign-in takes asks for
    `full_cost_password_hashes`; `digest` child processes always hash at full cost."""
    from argon2 import PasswordHasher

    from digest.staff import users

    real = users._HASHER
    users._HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    users.dummy_hash.cache_clear()
    yield
    users._HASHER = real
    users.dummy_hash.cache_clear()


@pytest.fixture
def full_cost_password_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The production argon2 cost for this test (its dummy hash made afresh at it)."""
    from argon2 import PasswordHasher

    from digest.staff import users

    monkeypatch.setattr(users, "_HASHER", PasswordHasher())
    users.dummy_hash.cache_clear()
    yield
    monkeypatch.undo()
    users.dummy_hash.cache_clear()


@pytest.fixture(autouse=True, scope="session")
def fresh_sqlite_from_a_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A brand-new SQLite database opened in this process gets the schema by SQLite's backup
    API from one database migrated once a session (a worker's, under xdist), instead of
    running every migration again: the same bytes of schema, in a tenth of the time. A
    database that holds anything (an older schema, tables, rows) is migrated for real, and
    the migrations' own tests and every `digest` run in a child process still run them."""
    import sqlite3
    import threading

    from digest.store import db

    real = db.migrate
    template = tmp_path_factory.mktemp("schema") / "template.db"
    made: list[sqlite3.Connection] = []
    lock = threading.Lock()  # the scheduler's jobs open databases from several threads

    def migrate(engine: Engine) -> None:
        if engine.dialect.name != "sqlite" or not _empty(engine):
            real(engine)
            return
        with lock:
            if not made:
                first = sa.create_engine(f"sqlite:///{template}")
                sa.event.listen(first, "connect", db._sqlite_pragmas)  # as open_engine's
                real(first)
                first.dispose()
                made.append(sqlite3.connect(template, check_same_thread=False))
            with engine.connect() as conn:
                made[0].backup(conn.connection.driver_connection)  # type: ignore[arg-type]

    db.migrate = migrate  # type: ignore[assignment]
    yield
    db.migrate = real  # type: ignore[assignment]


def _empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar() == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: SQLite (a new file), and PostgreSQL when `make test` started one
    (a copy of the session's migrated one; empty with `empty_database`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    admin_url = os.environ.get("DIGEST_TEST_POSTGRES_URL")
    if not admin_url:
        if os.environ.get("DIGEST_REQUIRE_POSTGRES"):  # make test: a missing server fails
            pytest.fail("PostgreSQL did not start: see scripts/with-postgres")
        pytest.skip("no PostgreSQL: run under scripts/with-postgres (make test does)")
    # A test that builds an older schema itself asks for `empty_database`.
    with postgres_database(admin_url, migrated="empty_database" not in request.fixturenames) as url:
        yield url


@contextmanager
def postgres_database(admin_url: str, *, migrated: bool) -> Iterator[str]:
    """A new database on the test server, dropped after: a copy of the session's migrated
    one (made by the server, not by running every migration again), or empty."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    template = _postgres_template(admin) if migrated else ""
    with admin.connect() as conn:
        copied = f' TEMPLATE "{template}"' if template else ""
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{copied}'))
    try:
        yield _postgres_url(admin_url, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def second_database(database_url: str, folder: Path, name: str, *, migrated: bool) -> Iterator[str]:
    """Another fresh database of the same kind as ``database_url``: the SQLite file
    ``name``.db in ``folder``, or a PostgreSQL database as :func:`postgres_database` makes."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{folder / name}.db"
        return
    with postgres_database(os.environ["DIGEST_TEST_POSTGRES_URL"], migrated=migrated) as url:
        yield url


@pytest.fixture
def empty_database() -> None:
    """Asked for beside ``database_url``: its PostgreSQL database is empty, not a copy of
    the session's migrated one (SQLite's is a new file either way)."""


_POSTGRES_TEMPLATE: list[str] = []


def _postgres_url(admin_url: str, name: str) -> str:
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _postgres_template(admin: Engine) -> str:
    """A database migrated to the newest schema, once a session (a worker's, under xdist):
    each test's database is made from it by the server (CREATE DATABASE ... TEMPLATE)
    instead of running every migration again."""
    if not _POSTGRES_TEMPLATE:
        name = f"template_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = _postgres_url(admin.url.render_as_string(hide_password=False), name)
        open_engine(url, Path.cwd()).dispose()  # no connection may stay open on a template
        _POSTGRES_TEMPLATE.append(name)
    return _POSTGRES_TEMPLATE[0]


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

    def app(self, at: datetime | None = None, secrets: Secrets | None = None) -> App:
        """The application context, its clock pinned to ``at`` when given."""
        ctx = App(self.settings(), self.engine(), secrets or Secrets.from_env())
        if at is not None:
            ctx.clock = lambda: at
        return ctx


@pytest.fixture
def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Project]:
    """make_project(extra_toml) writes BASE_CONFIG + extra_toml to tmp_path/config.toml."""
    for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY", "DIGEST_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)

    return lambda extra="": write_project(tmp_path, extra)


def write_project(folder: Path, extra: str = "") -> Project:
    """BASE_CONFIG + extra (and the quiet checks, a roomy print profile unless given) as
    folder/config.toml: what make_project writes, for a module-scoped fixture too."""
    text = textwrap.dedent(BASE_CONFIG) + textwrap.dedent(extra)
    if "print.profiles" not in text and "[print]" not in text:
        text += ROOMY_PRINT
    if "[checks]" not in text:
        text += QUIET_CHECKS
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return Project(folder)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium, one per test module."""
    from tests.browsers import launch

    yield from launch()


def import_people(
    settings: Settings, engine: Engine, path: Path, list_slug: str = "weekly"
) -> ImportReport:
    """A CSV onto a list, everyone active at once, as `digest subscribers import` does."""
    return import_csv(
        App(settings, engine),
        path,
        list_slug=list_slug,
        default_format=None,
        pending=False,
        dry_run=False,
        now=NOW,
    )


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    """A fake SendGrid on loopback (the test key, no rate-limit waits); the test fails if
    the fake itself raised."""
    with FakeSendGrid(api_key=API_KEY, faults=Faults(reset_in=0)) as server:
        yield server
    assert server.crashes() == [], f"the fake SendGrid raised: {server.crashes()}"
