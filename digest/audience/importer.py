"""Subscribers from a spreadsheet's CSV: forgiving about the file, strict about addresses."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Connection, Engine

from digest.config import Settings
from digest.errors import AudienceError
from digest.store import audience as store

EMAIL_HEADERS = {"email", "e-mail", "email address", "e-mail address", "mail", "emailaddress"}
NAME_HEADERS = {"name", "full name", "fullname"}
FIRST_HEADERS = {"first name", "firstname", "first", "given name"}
LAST_HEADERS = {"last name", "lastname", "last", "surname", "family name"}
FORMAT_HEADERS = {"format"}
FORMATS = {"html", "text"}


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    written: bool = False


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    email: str
    key: str
    name: str
    format: str


def import_csv(
    settings: Settings,
    engine: Engine,
    path: Path,
    *,
    list_slug: str,
    default_format: str,
    pending: bool,
    dry_run: bool,
    now: datetime,
    strict: bool = False,
) -> ImportReport:
    """Add or update the file's subscribers on a list, all in one transaction.

    Nothing is written with ``dry_run``, nor with ``strict`` when any row was rejected;
    the report is the same either way (``written`` says which).
    """
    settings.list_named(list_slug)
    if default_format not in FORMATS:
        raise AudienceError(f"--format {default_format!r} is not one of: html, text")
    report = ImportReport()
    rows = list(_valid_rows(read_table(path), default_format, report))
    with engine.begin() as conn:
        store.sync_lists(conn, settings.lists)
        for row in rows:
            _apply(conn, row, list_slug, "pending" if pending else "active", path.name, now, report)
        if dry_run or (strict and report.rejected):
            conn.rollback()
        else:
            report.written = True
    return report


def _apply(
    conn: Connection,
    row: _Row,
    list_slug: str,
    status: str,
    source: str,
    now: datetime,
    report: ImportReport,
) -> None:
    existing = store.find_subscriber(conn, row.key)
    if existing is None:
        sid = store.add_subscriber(
            conn,
            email=row.email,
            email_key=row.key,
            name=row.name,
            status=status,
            fmt=row.format,
            source=f"import {source}",
            now=now,
        )
        store.ensure_membership(conn, sid, list_slug, status, now)
        report.added += 1
        return
    changed = {}
    if row.name and row.name != existing.name:
        changed["name"] = row.name
    if row.format != existing.format:
        changed["format"] = row.format
    if changed:
        store.update_subscriber(conn, existing.id, **changed)
    joined = store.ensure_membership(conn, existing.id, list_slug, status, now)
    if changed or joined:
        report.updated += 1
    else:
        report.unchanged += 1


def read_table(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of a CSV file in any common dialect."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AudienceError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw.strip():
        raise AudienceError(f"{path}: the file is empty: export the list with a header row")
    if b"\0" in raw[:4096]:
        raise AudienceError(f"{path}: this is not a text file: save the spreadsheet as CSV")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header = [h.strip().lower() for h in next(reader, [])]
    if not EMAIL_HEADERS & set(header):
        raise AudienceError(
            f"{path}: line 1 has no email column (found: "
            f"{', '.join(header)[:80] or 'nothing'}): add a header row "
            "with 'email' (and optionally 'name', 'format')"
        )
    return header, ((reader.line_num, row) for row in reader)


def _valid_rows(
    table: tuple[list[str], Iterator[tuple[int, list[str]]]],
    default_format: str,
    report: ImportReport,
) -> Iterator[_Row]:
    header, rows = table
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    email_at = next(col[h] for h in header if h in EMAIL_HEADERS)
    seen: set[str] = set()
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        cell = _cells(cells, col)
        address = cells[email_at].strip() if email_at < len(cells) else ""
        try:
            email = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            report.rejected.append((line, f"{address!r}: {exc}" if address else "no email"))
            continue
        fmt = (cell(FORMAT_HEADERS) or default_format).lower()
        if fmt not in FORMATS:
            report.rejected.append((line, f"format {fmt!r} is not html or text"))
            continue
        key = email.casefold()
        if key in seen:
            report.rejected.append((line, f"{email} appears earlier in the file"))
            continue
        seen.add(key)
        name = cell(NAME_HEADERS) or " ".join(
            p for p in (cell(FIRST_HEADERS), cell(LAST_HEADERS)) if p
        )
        yield _Row(line, email, key, " ".join(name.split()), fmt)


def _cells(cells: list[str], col: dict[str, int]) -> Callable[[set[str]], str]:
    def cell(names: set[str]) -> str:
        for name in names:
            i = col.get(name)
            if i is not None and i < len(cells) and cells[i].strip():
                return cells[i].strip()
        return ""

    return cell
