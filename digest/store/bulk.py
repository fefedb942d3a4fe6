"""Named queries for a large import: a chunk of rows is one statement (on PostgreSQL a
COPY), and each value is converted for the driver once per distinct value rather than once
per row (SQLAlchemy's per-row parameter processing was most of an import's time in the
database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.chunks import batched
from digest.store.audience import Marks
from digest.store.sql import driver_cursor, on_driver
from digest.store.tables import memberships, subscribers

KEYS_PER_QUERY = 5000  # one array on PostgreSQL; on SQLite, as many as it takes at once
SQLITE_ROWS = 500  # rows per multi-row INSERT ... RETURNING on SQLite (8 columns each)
# {keys} is ``IN (?, ...)`` on SQLite, ``= ANY(%(keys)s)`` on PostgreSQL; see _select.
KNOWN = (
    "SELECT s.email_key, s.id, s.name, s.status, s.timezone, m.subscriber_id, m.status, "
    "m.format, m.profile FROM subscribers s LEFT OUTER JOIN memberships m "
    "ON m.subscriber_id = s.id AND m.list_slug = {slug} WHERE s.email_key {keys}"
)
SUPPRESSED = "SELECT email_key FROM suppressions WHERE email_key {keys}"


class Member(NamedTuple):
    """A stored membership of the list being imported into (a named tuple: a re-import makes
    one per row, three times as fast as a frozen dataclass)."""

    status: str
    format: str
    profile: str | None


class Known(NamedTuple):
    """What an import compares of a stored subscriber; ``member`` is None when they are not
    on the list."""

    id: int
    name: str
    status: str
    timezone: str | None
    member: Member | None


def known_for_import(conn: Connection, list_slug: str, keys: Sequence[str]) -> dict[str, Known]:
    """The stored subscribers among these email keys, each with their membership of the
    list: one query for thousands of keys, only the columns an import compares (text and
    integers, which the driver gives as SQLAlchemy would)."""
    found: dict[str, Known] = {}
    for part in batched(keys, KEYS_PER_QUERY):
        for key, sid, name, status, zone, member_id, *membership in _select(
            conn, KNOWN, part, slug=list_slug
        ):
            member = None if member_id is None else Member(*membership)
            found[key] = Known(sid, name, status, zone, member)
    return found


def suppressed_among(conn: Connection, keys: Sequence[str], marks: Marks) -> list[str]:
    """The keys that have a suppression row, under their own key or a forgotten mark: the
    few that ``suppressions_by_key`` (the one place that decides what it means) need ask
    about, found in one query per thousands of keys instead of one per 500."""
    among: set[str] = set()
    for part in batched(keys, KEYS_PER_QUERY // 2):
        by_mark = {mark: key for key in part for mark in marks(key)}
        hits = {row[0] for row in _select(conn, SUPPRESSED, [*part, *by_mark])}
        among |= hits.intersection(part)
        among |= {by_mark[hit] for hit in hits.intersection(by_mark)}
    return sorted(among)


def _select(conn: Connection, sql: str, keys: Sequence[str], *, slug: str = "") -> list[Any]:
    """``sql`` with ``{keys}`` an ``IN`` of many keys (and ``{slug}``, if there, before it,
    the slug), on the driver's cursor: reading thousands of rows through SQLAlchemy's
    result took longer than the query."""
    with_slug = "{slug}" in sql
    if conn.dialect.name == "postgresql":
        # The keys as a binary array: psycopg's text arrays quote each element by regex.
        text = sql.format(slug="%(slug)s", keys="= ANY(%(keys)b)")
        return on_driver(conn, text, {"slug": slug, "keys": list(keys)})
    found: list[Any] = []
    for part in batched(keys, _sqlite_parameters(conn) - 1):
        text = sql.format(slug="?", keys=f"IN ({', '.join('?' * len(part))})")
        found += on_driver(conn, text, ((slug,) if with_slug else ()) + tuple(part))
    return found


def _sqlite_parameters(conn: Connection) -> int:
    """How many parameters SQLite takes in one statement: 32,766 since 3.32, 999 before."""
    driver = conn.connection.driver_connection
    return int(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))  # type: ignore[union-attr]


def add_subscribers(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert many subscribers (dicts of column values, the same columns in each) in a
    statement or two; their ids by email key."""
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        # The ids an INSERT would give them, taken from the same sequence in row order.
        ids = [sid for (sid,) in on_driver(conn, RESERVE_IDS, (_id_sequence(conn), len(rows)))]
        _copy(conn, subscribers, rows, ids=ids)
        return {row["email_key"]: sid for row, sid in zip(rows, ids, strict=True)}
    returning = " RETURNING id, email_key"
    return {key: sid for sid, key in _insert(conn, subscribers, rows, returning)}


def add_memberships(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many memberships (dicts of column values, the same columns in each) in one
    statement per 500 rows (SQLite) or one COPY (PostgreSQL), for
    ``store.audience.add_memberships`` (for 100,000 rows on SQLite, 0.6 s of CPU against
    1.9 s in SQLAlchemy's executemany)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, memberships, rows)
    else:
        _insert(conn, memberships, rows, "")


# nextval once per row, in order (a parameter cast once, not a look-up per row: 1 us a row)
RESERVE_IDS = "SELECT nextval(%s::regclass) FROM generate_series(1, %s) ORDER BY 1"


def _id_sequence(conn: Connection) -> str:
    """The sequence behind subscribers.id (its name as PostgreSQL quotes it)."""
    found = on_driver(conn, "SELECT pg_get_serial_sequence(%s, 'id')", (subscribers.name,))
    return str(found[0][0])


def _copy(
    conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]], ids: list[int] | None = None
) -> None:
    """The rows into ``table`` by one binary COPY (with ``ids`` as the id column, when
    given): psycopg writes each row in C, with each value in the column's own binary form,
    where one array parameter per column of an INSERT ... SELECT FROM unnest(...) took 4 s
    of the client's CPU for 100,000 subscribers and their memberships, a text COPY 1.1 s,
    and this 0.3 s."""
    columns = list(rows[0])
    values = [_converted(conn, table.c[name], [r[name] for r in rows]) for name in columns]
    if ids is not None:
        columns, values = ["id", *columns], [ids, *values]
    quote = conn.dialect.identifier_preparer.quote
    # Every name in it is the schema's, never a value: those go as COPY data.
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    # The column's type as psycopg names it: VARCHAR(320) is varchar (the server checks the
    # length as it would for text), TIMESTAMP WITHOUT TIME ZONE is itself.
    types = [table.c[c].type.compile(dialect=conn.dialect).lower().split("(")[0] for c in columns]
    with driver_cursor(conn, sql) as cursor, cursor.copy(f"{sql} (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in zip(*values, strict=True):
            copy.write_row(row)


def _insert(
    conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]], returning: str
) -> list[Any]:
    """The rows into ``table`` on SQLite: multi-row INSERTs, as many rows each as its
    parameter limit allows."""
    columns = list(rows[0])
    values = [_converted(conn, table.c[name], [r[name] for r in rows]) for name in columns]
    quote = conn.dialect.identifier_preparer.quote
    into = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)})"
    marks = "(" + ", ".join("?" * len(columns)) + ")"
    found: list[Any] = []
    per_statement = min(SQLITE_ROWS, _sqlite_parameters(conn) // len(columns))
    for part in batched(zip(*values, strict=True), per_statement):
        sql = f"{into} VALUES {', '.join([marks] * len(part))}{returning}"
        found += on_driver(conn, sql, tuple(v for row in part for v in row))
    return found


def _converted(conn: Connection, column: sa.Column[Any], values: Iterable[Any]) -> list[Any]:
    """The values as the driver takes them (an aware datetime as naive UTC, and on SQLite
    as text), exactly as SQLAlchemy would convert each, but once per distinct value."""
    # The dialect's own type: SQLite's DATETIME writes microseconds; the generic one does not.
    kind = column.type.dialect_impl(conn.dialect)
    convert: Callable[[Any], Any] | None = kind.bind_processor(conn.dialect)
    if convert is None:
        return list(values)
    done: dict[Any, Any] = {}
    out = []
    for value in values:
        if value not in done:
            done[value] = convert(value)
        out.append(done[value])
    return out
