"""Subscribers out to CSV: safe to open in a spreadsheet, and importable unchanged."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy.engine import Connection, Row

from digest.audience.cells import escape_cell
from digest.errors import AudienceError
from digest.store import audience as store

if TYPE_CHECKING:
    from digest.context import App

COLUMNS = ("email", "name", "status", "lists", "format", "created")
STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
BATCH = 1000


def export_csv(
    app: App, out: TextIO, *, list_slug: str | None, status: str | None, text: str = ""
) -> int:
    """Write subscribers as CSV (columns: email,name,status,lists,format,created); the count.
    ``list_slug``, ``status`` and ``text`` pick whom, as the console's filters do."""
    engine = app.engine
    wanted = subscriber_filter(app, text=text, list_slug=list_slug, status=status)
    # RFC 4180 line ends: then a CR inside a cell is quoted too (with "\n" alone it is not).
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    written = 0
    with engine.connect() as conn:
        batch: list[Row[Any]] = []
        for row in store.export_rows(conn, wanted):
            batch.append(row)
            if len(batch) == BATCH:
                written += _write(conn, writer, batch)
                batch = []
        written += _write(conn, writer, batch)
    return written


def subscriber_filter(
    app: App, *, text: str = "", list_slug: str | None, status: str | None
) -> store.Filter:
    """A filter of subscribers, its list and status checked (AudienceError or ConfigError)."""
    if list_slug is not None:
        app.settings.list_named(list_slug)
    if status is not None and status not in STATUSES:
        raise AudienceError(f"--status {status!r} is not one of: {', '.join(STATUSES)}")
    return store.Filter(text[:200], list_slug, status)


def _write(conn: Connection, writer: Any, rows: list[Row[Any]]) -> int:
    if not rows:
        return 0
    lists = store.lists_of(conn, [r.id for r in rows])
    for r in rows:
        cells = (
            r.email,
            r.name,
            r.status,
            " ".join(lists.get(r.id, [])),
            r.format or "",
            r.created.isoformat(),
        )
        writer.writerow([escape_cell(c) for c in cells])
    return len(rows)
