"""Small query helpers shared by the named queries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def one_of(conn: Connection, column: sa.Column[Any], values: Sequence[Any]) -> Any:
    """``column IN (values)``. On PostgreSQL one array parameter (``= ANY(...)``): the
    statement's text is the same whatever the count, so psycopg parses and caches it once
    instead of parsing a statement with hundreds of placeholders on every call."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(column_array(column, values))
    return column.in_(values)


def column_array(column: sa.Column[Any], values: Sequence[Any]) -> Any:
    """A PostgreSQL array parameter of ``column``'s type (the dialect imported here: a
    tenth of a second that a command on SQLite never needs)."""
    from sqlalchemy.dialects import postgresql

    return sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))


def on_driver(conn: Connection, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    """One statement on the connection's own driver cursor, in its transaction, and the
    rows it returns as plain tuples: for the hot paths (a batch's recipients, a bulk
    import, the one-click unsubscribe), where SQLAlchemy's statement building and result
    took many times the query's own time. Positional markers are written ``?`` and become
    ``%s`` for psycopg; named parameters are passed as they are."""
    if not isinstance(params, Mapping) and conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    with driver_cursor(conn, sql, params) as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


@contextmanager
def driver_cursor(conn: Connection, sql: str, params: Any = ()) -> Iterator[Any]:
    """The connection's own driver cursor, in its transaction, for ``sql``: closed after,
    and the driver's errors raised as SQLAlchemy's, as elsewhere."""
    dbapi = conn.dialect.loaded_dbapi
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, dbapi.Error) from exc
    finally:
        cursor.close()
