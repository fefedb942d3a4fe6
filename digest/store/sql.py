"""Small query helpers shared by the named queries."""

from __future__ import annotations

from collections.abc import Sequence
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
