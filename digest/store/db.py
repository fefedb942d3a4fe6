"""Opening the database and bringing its schema up to date through Alembic."""

from __future__ import annotations

import os
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from digest.errors import ConfigError, DigestError
from digest.paths import private_folder

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATING = threading.Lock()
_MIGRATED: set[str] = set()  # databases already brought up to date by this process
_SQLITE_WRITERS: dict[str, threading.Lock] = {}


def sqlite_url_for(database_url: str, base_dir: Path) -> str:
    """Resolve a relative SQLite path against ``base_dir``; create its folder (0700) and the
    file (0600: SQLite gives its -wal and -shm files the same mode) when they are new."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            f"database URL {database_url!r} is not valid: use e.g. sqlite:///var/digest.db "
            "or postgresql+psycopg://user@host/db in DIGEST_DATABASE_URL"
        ) from None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return database_url
    path = Path(url.database)
    if not path.is_absolute():
        path = base_dir / path
    private_folder(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    return url.set(database=str(path)).render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")  # a big plan holds the write lock for a while
    cur.close()


def open_engine(database_url: str, base_dir: Path) -> Engine:
    """An engine on the configured database, schema migrated to the newest version."""
    url = sqlite_url_for(database_url, base_dir)
    try:
        engine = sa.create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use database URL: {exc}: check DIGEST_DATABASE_URL") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with _MIGRATING:  # the scheduler's jobs open the database from several threads
            if url not in _MIGRATED:
                _migrate_when_free(engine)
                _MIGRATED.add(url)
    except DatabaseError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise DigestError(
            f"cannot open the database {where}: {exc.orig}: check DIGEST_DATABASE_URL "
            "and that its folder is writable"
        ) from None
    return engine


def one_writer(engine: Engine) -> AbstractContextManager[object]:
    """Around a short write from a web request: on SQLite, one such writer at a time in this
    process. SQLite lets one writer in and makes the others sleep and poll (up to 100 ms a
    nap), which turns a few concurrent requests into a long tail; a lock queues them instead.
    Other databases take row locks and need nothing."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _MIGRATING:
        return _SQLITE_WRITERS.setdefault(str(engine.url), threading.Lock())


def _migrate_when_free(engine: Engine, tries: int = 6) -> None:
    """SQLite refuses at once (no busy wait) a read transaction that turns into a write while
    another connection writes, as the scheduler's job store may: the upgrade, rolled back
    whole, is tried again a little later."""
    for attempt in range(tries):
        try:
            migrate(engine)
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or attempt == tries - 1:
                raise
            time.sleep(0.1 * 2**attempt)


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (a no-op when it is current)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it: foreign keys must be off meanwhile
            # (a PRAGMA outside any transaction), and are checked once it is done.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                raise DigestError(
                    "the database has rows that point at missing rows after "
                    "the upgrade: restore a backup and report this"
                )
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
