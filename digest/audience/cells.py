"""Spreadsheet cells that could run as formulas: escaped on export, restored on import."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: str) -> str:
    """Prefix a quote so a spreadsheet shows the cell as text instead of running it."""
    return "'" + value if value.startswith(FORMULA_START) else value


def unescape_cell(value: str) -> str:
    """Undo :func:`escape_cell` (and only that), so an export imports unchanged."""
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value
