"""Spreadsheet files as they come (any common CSV dialect, UTF-8 or Windows-1252), read as
a stream; and cells that could run as formulas: escaped on export, restored on import."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from digest.errors import AudienceError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    """Prefix a quote so a spreadsheet shows the cell as text instead of running it."""
    return "'" + value if value.startswith(FORMULA_START) else value


def unescape_cell(value: str) -> str:
    """Undo :func:`escape_cell` (and only that), so an export imports unchanged."""
    if value[:1] == "'" and value[1:2] in FORMULA_START:
        return value[1:]
    return value


def first_filled(cells: list[str], columns: list[int]) -> str:
    """A row's first non-blank cell among a field's columns, formula quote taken off."""
    for i in columns:
        if i < len(cells):
            value = unescape_cell(cells[i]).strip()
            if value:
                return value
    return ""


def field_reader(columns: list[int]) -> Callable[[list[str]], str]:
    """:func:`first_filled` for one field's columns, made once per file: most fields have one
    column or none, and those two need no loop (an import reads six fields a row)."""
    if not columns:
        return lambda _cells: ""
    if len(columns) > 1:
        return lambda cells: first_filled(cells, columns)
    at = columns[0]

    def one(cells: list[str]) -> str:
        return unescape_cell(cells[at]).strip() if at < len(cells) else ""

    return one


READ_BYTES = 1 << 20  # the encoding check reads the file a megabyte at a time


def read_rows(
    path: Path, check_header: Callable[[list[str]], None]
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header (stripped, lower case) and the (line number, cells) of a CSV file, the
    rows read as they are taken, so a file of any length takes a few megabytes.
    ``check_header`` raises if the header won't do (the file is closed then)."""
    encoding = _encoding(path)
    # errors="replace" only ever applies to Windows-1252: UTF-8 was checked whole.
    fh = path.open(encoding=encoding, errors="replace", newline="")
    try:
        sample = fh.read(8192)
        fh.seek(0)
        # Only the delimiter is sniffed: the sniffer takes the quote that escapes a formula
        # cell ('=...) for a quote character, and that breaks every such row.
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
        reader = csv.reader(fh, csv.excel, delimiter=delimiter)
        header = [h.strip().lower() for h in next(reader, [])]
        check_header(header)
    except BaseException:
        fh.close()
        raise
    return header, _numbered(fh, reader)


def _numbered(fh: TextIO, reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    with fh:
        for row in reader:
            yield reader.line_num, row  # type: ignore[attr-defined]


def _encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file is UTF-8 (a BOM or not), else ``cp1252``;
    AudienceError for a file that is unreadable, empty or not text."""
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        with path.open("rb") as fh:
            chunk = fh.read(READ_BYTES)
            has_text, binary = bool(chunk.strip()), b"\0" in chunk[:4096]
            try:
                while chunk:
                    utf8.decode(chunk)
                    chunk = fh.read(READ_BYTES)
                    has_text = has_text or bool(chunk.strip())
                utf8.decode(b"", final=True)
                encoding = "utf-8-sig"
            except UnicodeDecodeError:
                encoding = "cp1252"  # and has_text: that byte is no whitespace
    except OSError as exc:
        raise AudienceError(f"{path}: cannot read ({exc.strerror})") from None
    if not has_text:
        raise AudienceError(f"{path}: the file is empty: export the list with a header row")
    if binary:
        raise AudienceError(f"{path}: this is not a text file: save the spreadsheet as CSV")
    return encoding
