"""Staff notes: Markdown files with YAML front matter in the notes folder."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from markdown_it import MarkdownIt
from sqlalchemy.engine import Connection

from digest.collect.sanitize import ONLINE_ONLY, clean_html, cut_at_word, html_to_text, one_line
from digest.errors import SourceError
from digest.models import Item, ItemKind
from digest.store import notes as staff_notes

FRONT_MATTER_KEYS = {"title", "date", "section", "pin", "editor_note", "author"}
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
# A paragraph or list item that starts with "[online]" is for the web alone: the email
# shows it (without the mark) and the print edition leaves it out.
ONLINE_MARK = "[online]"
_ONLINE = re.compile(r"<(p|li)>(\s*<p>)?\s*" + re.escape(ONLINE_MARK) + r"\s*", re.IGNORECASE)


def markdown_html(source: str) -> str:
    """A note's Markdown as sanitised HTML, its ``[online]`` paragraphs marked as such."""
    html = _MARKDOWN.render(source)
    marked = _ONLINE.sub(
        lambda m: (
            f'<{m[1]} class="{ONLINE_ONLY}">' + (f'<p class="{ONLINE_ONLY}">' if m[2] else "")
        ),
        html,
    )
    return clean_html(marked)


@dataclass(frozen=True, slots=True)
class ParsedNotes:
    items: list[Item]  # every readable note, due or not (a future date means not yet due)
    problems: list[str] = field(default_factory=list)
    keys: frozenset[str] = frozenset()  # of every note file in the folder, readable or not


def read_notes(
    folder: Path, *, default_section: str, zone: ZoneInfo, now: datetime, summary_chars: int
) -> ParsedNotes:
    """Every note in ``folder``; a broken file is reported and skipped, never fatal."""
    if not folder.is_dir():
        raise SourceError(
            f"notes folder {folder} does not exist: create it or fix sources.notes.dir"
        )
    items, problems = [], []
    paths = sorted(folder.glob("*.md"))
    for path in paths:
        try:
            item = read_note(
                path,
                default_section=default_section,
                zone=zone,
                now=now,
                summary_chars=summary_chars,
            )
        except SourceError as exc:
            problems.append(str(exc))
            continue
        items.append(item)
    return ParsedNotes(items, problems, frozenset(note_key(p) for p in paths))


def note_key(path: Path) -> str:
    """A note's stable id: its file name (edits keep it, renames make a new note)."""
    return "note-" + hashlib.sha256(path.name.encode()).hexdigest()[:32]


def read_note(
    path: Path, *, default_section: str, zone: ZoneInfo, now: datetime, summary_chars: int
) -> Item:
    """One note file as an item (its date may be in the future: it is then not due yet)."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    meta, body = split_front_matter(raw, path)
    return note_item(
        note_key(path),
        Note(
            title=one_line(str(meta.get("title") or "")) or path.stem.replace("-", " "),
            body=body,
            section=str(meta.get("section") or default_section),
            pinned=bool(meta.get("pin", False)),
            editor_note=bool(meta.get("editor_note")),
            published=_note_time(meta.get("date"), zone, path) or now,
            author=str(meta.get("author") or ""),
        ),
        now=now,
        summary_chars=summary_chars,
    )


@dataclass(frozen=True, slots=True)
class Note:
    """What a note says, from a file's front matter or the console's form."""

    title: str
    body: str  # Markdown
    section: str
    pinned: bool
    editor_note: bool
    published: datetime
    author: str


def note_item(key: str, note: Note, *, now: datetime, summary_chars: int) -> Item:
    """A note as an item: its Markdown rendered (no raw HTML) and sanitised."""
    html = markdown_html(note.body)
    return Item(
        key=key,
        source="notes",
        section=note.section,
        title=one_line(note.title) or "(untitled note)",
        url=None,
        summary=cut_at_word(html_to_text(html), summary_chars),
        body_html=html,
        published=note.published,
        first_seen=now,
        author=one_line(note.author),
        pinned=note.pinned,
        kind=ItemKind.EDITOR_NOTE if note.editor_note else ItemKind.NOTE,
    )


def staff_note_key(note_id: int) -> str:
    """A console note's stable id (apart from the files' ``note-<hash>``)."""
    return f"note-console-{note_id}"


def split_front_matter(raw: str, path: Path) -> tuple[dict[str, Any], str]:
    """The YAML between the opening ``---`` lines, and the Markdown after it."""
    if not raw.startswith("---"):
        return {}, raw
    parts = raw.split("\n---", 1)
    if len(parts) != 2:
        raise SourceError(f"{path}: front matter starts with --- but never ends: add a --- line")
    header = parts[0][3:]
    body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    try:
        meta = yaml.safe_load(header) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 2}" if mark is not None else ""
        raise SourceError(f"{path}:{line} front matter is not valid YAML: fix it") from None
    except ValueError as exc:  # PyYAML's own date parsing, e.g. 2026-13-01
        raise SourceError(f"{path}: front matter has an impossible value ({exc}): fix it") from None
    if not isinstance(meta, dict):
        raise SourceError(f"{path}: front matter must be 'key: value' lines")
    unknown = sorted(set(map(str, meta)) - FRONT_MATTER_KEYS)
    if unknown:
        raise SourceError(
            f"{path}: unknown front-matter key {unknown[0]!r} "
            f"(known: {', '.join(sorted(FRONT_MATTER_KEYS))})"
        )
    return meta, body


def _note_time(value: Any, zone: ZoneInfo, path: Path) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone)
    try:
        return _note_time(datetime.fromisoformat(str(value)), zone, path)
    except ValueError:
        raise SourceError(f"{path}: date {value!r} is not a date: write it as 2026-11-25") from None


def console_notes(conn: Connection, *, now: datetime, summary_chars: int) -> list[Item]:
    """The notes staff wrote in the console, as items (due or not)."""
    return [
        note_item(
            staff_note_key(row.id),
            Note(
                row.title,
                row.body,
                row.section,
                row.pinned,
                row.editor_note,
                row.published,
                row.author,
            ),
            now=now,
            summary_chars=summary_chars,
        )
        for row in staff_notes.all_notes(conn)
    ]
