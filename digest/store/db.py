"""Opening the database and bringing its schema up to date through Alembic.

Alembic (0.4 s to import, and its own read of every migration) loads only when the
schema is behind: a database whose ``alembic_version`` already names this code's newest
migration, read with one plain query, opens without it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from digest import clock as wall_clock
from digest.errors import ConfigError, DigestError
from digest.paths import private_folder
from digest.store import operations

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATING = threading.Lock()
_MIGRATED: set[str] = set()  # databases already brought up to date by this process
_SQLITE_WRITERS: dict[str, _SqliteWriter] = {}
# A migration's own ``revision = "0007"`` and ``down_revision = "0006"`` lines.
_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*['\"]?([^'\"\s]+)", re.M)


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


def open_engine(database_url: str, base_dir: Path, *, backup_dir: Path | None = None) -> Engine:
    """An engine on the configured database, schema migrated to the newest version. With
    ``backup_dir``, a database that holds an older schema is backed up there first."""
    url = sqlite_url_for(database_url, base_dir)
    try:
        engine = sa.create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"cannot use database URL: {exc}: check DIGEST_DATABASE_URL") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with _MIGRATING:  # the scheduler's jobs open the database from several threads
            if url not in _MIGRATED and _is_current(engine):
                _MIGRATED.add(url)
            if url not in _MIGRATED:
                taken = _backup_before_upgrade(engine, backup_dir) if backup_dir else None
                _migrate_when_free(engine)
                _MIGRATED.add(url)
                if taken is not None:
                    with engine.begin() as conn:
                        operations.record_backup(conn, taken)
    except DatabaseError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise DigestError(
            f"cannot open the database {where}: {exc.orig}: check DIGEST_DATABASE_URL "
            "and that its folder is writable"
        ) from None
    return engine


def head_revision() -> str | None:
    """This code's newest migration, from the files' own lines (no Alembic): None when
    they do not make one line of revisions (Alembic is then asked)."""
    revisions, downs = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            return None
        revisions.add(found["revision"])
        downs.add(found.get("down_revision"))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _is_current(engine: Engine) -> bool:
    """The database's schema is this code's newest: nothing to migrate or back up. Any
    doubt (no ``alembic_version`` table, a database that does not answer) is False, and
    the upgrade's own path does what it does, or says what is wrong."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DatabaseError:
        return False
    return [row[0] for row in rows] == [head]


def _backup_before_upgrade(engine: Engine, folder: Path) -> operations.Backup | None:
    """Upgrades run with a backup taken first: a database whose schema is behind this code
    is copied into ``folder`` before the migrations touch it (a fresh one needs none).
    Without pg_dump on the machine a PostgreSQL upgrade goes on with a warning."""
    from digest import backup_copy  # it reads the migrations' folder, not this module

    order = backup_copy.revision_order()
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None and not sa.inspect(conn).get_table_names():
            return None
    if current == order[-1] or (current is not None and current not in order):
        return None  # up to date, or newer than this code (the upgrade says so)
    kind = backup_copy.kind_of_url(engine.url)
    now = wall_clock.now()
    dest = backup_copy.new_name(folder, kind, now)
    if kind == backup_copy.POSTGRESQL and shutil.which("pg_dump") is None:
        log.warning("upgrading the database from %s without a backup: pg_dump is missing", current)
        return None
    url = engine.url.render_as_string(hide_password=False)
    try:
        size = backup_copy.copy_database(url, dest)
    except (DigestError, OSError) as exc:
        raise DigestError(
            f"the database needs an upgrade (from migration {current}) and the backup taken "
            f"first failed: {exc}: make room in [backup] dir ({folder}) or fix its permissions"
        ) from None
    log.warning("before upgrading the database from migration %s: backed up to %s", current, dest)
    return operations.Backup(now, str(dest), size, True, f"before the upgrade from {current}")


class _SqliteWriter:
    """A lock in this process, then (for a database file) an exclusive ``flock`` on a file
    beside it, so the web app's worker processes queue too; the kernel wakes the next one
    as soon as the lock is free."""

    def __init__(self, database: str | None) -> None:
        self.thread_lock = threading.Lock()
        self.path = f"{database}-writer.lock" if database not in (None, "", ":memory:") else None
        self.fd: int | None = None

    def __enter__(self) -> None:
        self.thread_lock.acquire()
        try:
            if self.path is not None:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.thread_lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.thread_lock.release()


def one_writer(engine: Engine) -> AbstractContextManager[object]:
    """Around a short write from a web request: on SQLite, one such writer at a time, in this
    process and across the web app's worker processes. SQLite lets one writer in and makes
    the others sleep and poll (up to 100 ms a nap), which turns a few concurrent requests
    into a long tail; a lock queues them instead. Other databases take row locks and need
    nothing."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _MIGRATING:
        found = _SQLITE_WRITERS.get(str(engine.url))
        if found is None:
            found = _SQLITE_WRITERS[str(engine.url)] = _SqliteWriter(engine.url.database)
        return found


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
    from alembic import command
    from alembic.config import Config as AlembicConfig

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
