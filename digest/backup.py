"""`digest backup` and `digest restore`, and the daily backup job's work.

A backup is one consistent moment of the database (``digest.backup_copy``), taken while
`digest serve` keeps writing. Without ``--out`` it goes into ``[backup] dir`` under a dated
name, and only the newest ``[backup] keep`` of those stay. Every attempt, ok or failed, is
recorded in the ``backups`` table (the console shows the last).

A restore replaces the configured database with a backup: refused onto a database that
holds data unless forced, refused for a backup of the other kind of database or from a
newer digest, and followed by the migrations when the backup is older than this code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
import typer
from sqlalchemy.engine import URL, Engine, make_url

from digest import backup_copy
from digest.backup_copy import POSTGRESQL, SQLITE
from digest.config import Settings, config_path, load_settings
from digest.context import App
from digest.errors import DigestError
from digest.store import operations
from digest.store.db import migrate, sqlite_url_for
from digest.store.tables import editions, items, subscribers

log = logging.getLogger(__name__)
LABEL = {SQLITE: "SQLite", POSTGRESQL: "PostgreSQL"}
HOLDS_DATA = (subscribers, editions, items)  # any row in one: a restore would lose data


def backup_command(app: App, *, out: Path | None) -> str:
    """`digest backup`: take one, say where it went and how large it is."""
    taken = take_backup(app, out=out)
    return f"backed up the database to {taken.path} ({_size(taken.bytes)})"


def take_backup(app: App, *, out: Path | None) -> operations.Backup:
    """A backup into ``out``, or a dated file in [backup] dir with the older ones beyond
    [backup] keep removed; recorded either way. A failure is recorded, then raised."""
    settings = app.settings
    url = database_url(settings)
    folder = settings.resolve(settings.backup.dir)
    now = app.clock()
    dest = out.resolve() if out else backup_copy.new_name(folder, _kind(url), now)
    try:
        size = backup_copy.copy_database(url, dest)
    except (DigestError, OSError) as exc:
        why = str(exc) if isinstance(exc, DigestError) else f"{dest}: {exc.strerror}"
        _record(app.engine, operations.Backup(now, str(dest), 0, False, why))
        raise DigestError(f"backup failed: {why}") from None
    taken = operations.Backup(now, str(dest), size, True)
    _record(app.engine, taken)
    if out is None:
        for old in backup_copy.prune(folder, settings.backup.keep):
            log.info("backup: removed %s ([backup] keep = %s)", old, settings.backup.keep)
    return taken


def _record(engine: Engine, backup: operations.Backup) -> None:
    with engine.begin() as conn:
        operations.record_backup(conn, backup)


def restore_command(config: Path | None, file: Path, *, force: bool) -> None:
    """`digest restore FILE [--force]`: put a backup back as the configured database."""
    settings = load_settings(config_path(config))
    url = make_url(database_url(settings))
    kind = _kind(str(url))
    made_by = backup_copy.kind_of_file(file)
    if made_by != kind:
        raise DigestError(
            f"{file} is a {LABEL[made_by]} backup and the configured database is "
            f"{LABEL[kind]}: restore it onto a {LABEL[made_by]} database "
            "(database_url / DIGEST_DATABASE_URL)"
        )
    revision = _backup_revision(file, kind)
    order = backup_copy.revision_order()
    if revision not in order:
        raise DigestError(
            f"{file} was made by a newer digest (migration {revision}; this one knows up "
            f"to {order[-1]}): upgrade first"
        )
    engine = sa.create_engine(url)
    try:
        if not force and (held := holds_data(engine)):
            where = url.render_as_string(hide_password=True)
            raise DigestError(
                f"the database {where} holds data ({held}): restoring would replace it; "
                "take a backup of it first (digest backup), then run again with --force"
            )
        _restore(engine, url, file, kind)
        typer.echo(f"restored {file} into {url.render_as_string(hide_password=True)}")
        if revision != order[-1]:
            migrate(engine)
            typer.echo(
                f"the backup was at migration {revision}: ran the migrations up to {order[-1]}"
            )
    finally:
        engine.dispose()


def holds_data(engine: Engine) -> str:
    """What data the database holds, e.g. "subscribers, editions" ("" when none)."""
    with engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
        found = [
            t.name
            for t in HOLDS_DATA
            if t.name in present
            and conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first()
        ]
    return ", ".join(found)


def _restore(engine: Engine, url: URL, file: Path, kind: str) -> None:
    if kind == SQLITE:
        engine.dispose()  # no connection of ours holds the file meanwhile
        backup_copy.sqlite_restore(file, Path(str(url.database)))
        return
    # pg_restore --clean drops and recreates what the archive holds; a table it does not
    # hold (made by a later migration) would be left behind and break the migrations.
    keep = backup_copy.pg_archive_tables(file)
    with engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name not in keep:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()
    backup_copy.pg_restore(url, file)


def _backup_revision(file: Path, kind: str) -> str:
    if kind == SQLITE:
        revision = backup_copy.sqlite_revision(file)
    else:
        revision = backup_copy.pg_revision(file)
    if revision is None:
        raise DigestError(
            f"{file} holds no digest database (no migration level in it): "
            "give a file 'digest backup' made"
        )
    return revision


def database_url(settings: Settings) -> str:
    """The configured database URL, a relative SQLite path resolved."""
    return sqlite_url_for(settings.database_url, settings.base_dir)


def _kind(database_url: str) -> str:
    return backup_copy.kind_of_url(make_url(database_url))


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
