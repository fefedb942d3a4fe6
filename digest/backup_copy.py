"""Copying a live database to a file and back, below the commands in ``digest.backup``.

SQLite goes through its online backup API, PostgreSQL through ``pg_dump --format=custom``
and ``pg_restore``: both copy one consistent moment while other connections keep writing.
A copy is written under a temporary name beside its destination and renamed into place
only when it is complete, so a file with a backup's name is always a whole backup.

Nothing here knows the settings or the application context: the engine opener uses it
to take a backup before an upgrade, before any of that exists.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, make_url

from digest.errors import DigestError
from digest.paths import private_folder

MIGRATIONS = Path(__file__).resolve().parent / "store" / "migrations"
SQLITE, POSTGRESQL = "sqlite", "postgresql"
SUFFIX = {SQLITE: ".sqlite3", POSTGRESQL: ".pgdump"}
MAGIC = {SQLITE: b"SQLite format 3\x00", POSTGRESQL: b"PGDMP"}
# The files `digest backup` names itself: digest-YYYYmmdd-HHMMSS[-N].sqlite3|.pgdump (UTC).
NAMED = re.compile(r"^digest-(\d{8}-\d{6})(?:-(\d+))?\.(sqlite3|pgdump)$")
PG_TIMEOUT = 3600.0  # seconds pg_dump or pg_restore may take before we give up


def kind_of_url(url: URL) -> str:
    """sqlite or postgresql, or a DigestError for a database no backup knows."""
    backend = url.get_backend_name()
    if backend not in SUFFIX:
        raise DigestError(
            f"cannot back up a {backend} database: digest backs up SQLite and PostgreSQL only"
        )
    return backend


def kind_of_file(path: Path) -> str:
    """What made a backup file (sqlite or postgresql), read from its first bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise DigestError(f"cannot read the backup {path}: {exc.strerror}") from None
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    raise DigestError(
        f"{path} is not a backup digest made (neither an SQLite file nor a pg_dump "
        "custom-format archive): give the .sqlite3 or .pgdump file 'digest backup' wrote"
    )


def new_name(folder: Path, kind: str, now: datetime) -> Path:
    """A fresh backup name in ``folder`` for ``now`` (a -2, -3… when that second is taken)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    path = folder / f"digest-{stamp}{SUFFIX[kind]}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"digest-{stamp}-{n}{SUFFIX[kind]}"
    return path


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups this command named in ``folder`` (other
    files are never touched). Returns what was removed."""
    found: list[tuple[tuple[str, int], Path]] = []
    for path in folder.iterdir():
        match = NAMED.match(path.name)
        if match and path.is_file():
            found.append(((match[1], int(match[2] or 1)), path))
    found.sort(reverse=True)
    removed = [path for _, path in found[keep:]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


@contextmanager
def _written_whole(dest: Path) -> Iterator[Path]:
    """A temporary file (0600) beside ``dest``, renamed to ``dest`` when the block ends
    without an error, removed when it does not."""
    private_folder(dest.parent)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def copy_database(database_url: str, dest: Path) -> int:
    """A consistent copy of the database at ``database_url`` (SQLite URLs already resolved)
    in ``dest``; returns its size in bytes."""
    url = make_url(database_url)
    kind = kind_of_url(url)
    with _written_whole(dest) as tmp:
        if kind == SQLITE:
            sqlite_copy(Path(str(url.database)), tmp)
        else:
            pg_dump(url, tmp)
    return dest.stat().st_size


def sqlite_copy(source: Path, dest: Path) -> None:
    """The online backup API, all pages in one step: a read transaction on the live file
    (in WAL mode writers go on meanwhile). A copy in several steps starts over whenever
    another connection writes, and a running send writes after every batch."""
    try:
        src = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
                # One self-contained file: no -wal beside it to lose when it is copied off.
                dst.execute("PRAGMA journal_mode=DELETE")
                (check,) = dst.execute("PRAGMA quick_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise DigestError(f"cannot back up the SQLite database {source}: {exc}") from None
    if check != "ok":
        raise DigestError(f"the copy of {source} failed its check ({check}): try again")


def sqlite_restore(backup: Path, target: Path) -> None:
    """Copy ``backup`` into the database file ``target`` through the backup API: the
    database is replaced in one write transaction, as any open connection sees it."""
    try:
        src = sqlite3.connect(f"file:{quote(str(backup))}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target, timeout=30)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise DigestError(f"cannot restore {backup} into {target}: {exc}") from None


def sqlite_revision(path: Path) -> str | None:
    """The migration level recorded inside an SQLite backup (None: not a digest database)."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://…``) as a libpq URL for pg_dump
    and pg_restore, and the environment they need: the password goes in PGPASSWORD, never
    on a command line (every user of the machine can read those)."""
    user = quote(url.username, safe="") + "@" if url.username else ""
    host = quote(url.host or "", safe="")
    port = f":{url.port}" if url.port else ""
    query = urlencode(sorted(url.query.items()), doseq=True)
    text = f"postgresql://{user}{host}{port}/{quote(url.database or '', safe='')}"
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return text + (f"?{query}" if query else ""), env


def pg_tool(name: str) -> str:
    """The path of pg_dump or pg_restore, or a DigestError saying how to get it."""
    found = shutil.which(name)
    if found is None:
        raise DigestError(
            f"{name} is not installed: install PostgreSQL's client tools "
            "(apt-get install postgresql-client), the same major version as the server"
        )
    return found


def run_pg(url: URL, args: list[str]) -> str:
    """Run a PostgreSQL client tool against ``url``; its output, or its error as a
    DigestError (the password never in it)."""
    target, env = libpq(url)
    argv = [pg_tool(args[0]), *args[1:], f"--dbname={target}"]
    try:
        done = subprocess.run(  # noqa: S603 - our own argv, no shell
            argv, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise DigestError(f"{args[0]} took more than {PG_TIMEOUT:.0f} s: stopped") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {done.returncode}"
        if url.password:
            why = why.replace(str(url.password), "***")
        where = url.render_as_string(hide_password=True)
        raise DigestError(f"{args[0]} failed on {where}: {why}")
    return done.stdout


def pg_dump(url: URL, dest: Path) -> None:
    """``pg_dump --format=custom``: one snapshot of the whole database, whatever writes."""
    run_pg(url, ["pg_dump", "--format=custom", "--no-owner", f"--file={dest}"])


def pg_archive_tables(path: Path) -> set[str]:
    """The tables a pg_dump archive holds (from ``pg_restore --list``)."""
    listing = _pg_read(path, ["--list"])
    return {m[1] for m in re.finditer(r"^\d+; \d+ \d+ TABLE \S+ (\S+) ", listing, re.M)}


def pg_archive_rows(path: Path, table: str) -> list[dict[str, str | None]]:
    """The rows of ``table`` in a pg_dump archive, column name to COPY text (None: NULL)."""
    script = _pg_read(path, ["--data-only", f"--table={table}"])
    rows: list[dict[str, str | None]] = []
    columns: list[str] | None = None
    for line in script.splitlines():
        if columns is None:
            if header := re.match(r"^COPY \S+ \((.*)\) FROM stdin;$", line):
                columns = [c.strip().strip('"') for c in header[1].split(",")]
        elif line == "\\.":
            columns = None
        else:
            fields = [None if f == "\\N" else f for f in line.split("\t")]
            rows.append(dict(zip(columns, fields, strict=True)))
    return rows


def pg_revision(path: Path) -> str | None:
    """The migration level recorded inside a pg_dump archive (None: not a digest one)."""
    rows = pg_archive_rows(path, "alembic_version")
    return rows[0]["version_num"] if rows else None


def _pg_read(path: Path, args: list[str]) -> str:
    argv = [pg_tool("pg_restore"), *args, "--file=-", str(path)]
    done = subprocess.run(  # noqa: S603 - our own argv, no shell
        argv, capture_output=True, text=True, timeout=PG_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise DigestError(f"cannot read the archive {path}: {done.stderr.strip()}")
    return done.stdout


def pg_restore(url: URL, path: Path) -> None:
    """``pg_restore --clean --if-exists --no-owner`` in one transaction: all or nothing."""
    run_pg(
        url,
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            str(path),
        ],
    )


def revision_order() -> list[str]:
    """This code's migrations, oldest first."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    return [r.revision for r in reversed(list(script.walk_revisions()))]
