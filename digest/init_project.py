"""`digest init`: start an organisation's folder from the commented sample config.toml.

The new config.toml is the installed sample's text with the organisation's and the
sender's values put in, its own four lists, a notes folder of its own, and the sample's
example-specific parts (the sources, the branding, the note for readers inside) kept
as commented examples that point at nothing real. Nothing is written until every answer
is valid; an existing config.toml is never touched.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import typer
from pydantic import BaseModel, ValidationError

from digest.config import DeliverySettings, Organisation, load_settings
from digest.errors import DigestError
from digest.paths import bundled

NOTES_DIR = "notes"
TEMPLATE_CSV = Path("subscribers") / "template.csv"
# The columns `digest subscribers import` reads (digest.audience.importer; other
# spellings are accepted too). timezone: the person's own (an IANA name; empty: the
# organisation's). The last eight are a print member's mailing address.
TEMPLATE_COLUMNS = (
    "email", "name", "format", "timezone", "profile",
    "inmate_id", "facility", "unit", "address1", "address2", "city", "state", "zip",
)  # fmt: skip
# (slug, name, kind, description, double opt-in): what the sample has, said generally.
LISTS = (
    ("weekly", "Weekly digest", "digest", "News, stories and events, every week.", True),
    ("staff", "Staff previews", "digest", "Staff: previews and test sends.", False),
    ("alerts", "Action alerts", "alerts", "Urgent calls to action, as they happen.", True),
    ("inside", "Print edition", "print", "A printable edition to post to someone inside.", True),
)
# Tables of the sample that only make sense for its made-up coalition: kept as comments.
COMMENTED_TABLES = {"branding", "sources.feeds", "sources.calendars"}
_HEADER = re.compile(r"^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^([A-Za-z0-9_-]+)\s*=")


@dataclass(frozen=True, slots=True)
class Answers:
    """What `digest init` asks for; None is not given (asked at a terminal)."""

    name: str | None = None
    postal_address: str | None = None
    website: str | None = None
    timezone: str | None = None
    from_email: str | None = None
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class _Question:
    field: str
    prompt: str
    check: Callable[[str], str]  # the value to write, or ValueError saying what is wrong

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


def init_command(folder: Path, given: Answers) -> None:
    """Write ``folder``/config.toml, a notes folder and subscribers/template.csv; print
    the next steps. Refuses (DigestError) an existing config or a missing or bad answer."""
    config = folder / "config.toml"
    if config.exists() or config.is_symlink():
        raise DigestError(
            f"{config} already exists: nothing changed (edit it, or init another folder)"
        )
    if folder.exists() and not folder.is_dir():
        raise DigestError(f"{folder} is a file, not a folder: name a folder for the organisation")
    answers = _complete(given)
    text = config_text(bundled("config.toml").read_text(encoding="utf-8"), answers)
    folder.mkdir(parents=True, exist_ok=True)
    _write_new(config, text)
    (folder / NOTES_DIR).mkdir(exist_ok=True)
    template = folder / TEMPLATE_CSV
    template.parent.mkdir(exist_ok=True)
    if not template.exists():
        template.write_text(",".join(TEMPLATE_COLUMNS) + "\n", encoding="utf-8")
    _say_next(folder, config, answers)


def _at_terminal() -> bool:
    """Someone can answer questions (tests pretend so)."""
    return sys.stdin.isatty()


def _complete(given: Answers) -> Answers:
    """Every answer checked: the flags' first (a bad one is an error), then the questions
    the flags left out, asked at a terminal (again until valid) or named as missing."""
    values: dict[str, str] = {}
    missing = []
    for question in QUESTIONS:
        value = getattr(given, question.field)
        if value is None:
            missing.append(question)
            continue
        try:
            values[question.field] = question.check(value)
        except ValueError as exc:
            raise DigestError(f"{question.flag} {value!r}: {exc}") from None
    if missing and not _at_terminal():
        flags = ", ".join(q.flag for q in missing)
        raise DigestError(f"missing {flags}: pass them, or run 'digest init' at a terminal")
    for question in missing:
        values[question.field] = _ask(question)
    return Answers(**values)


def _ask(question: _Question) -> str:
    while True:
        value = typer.prompt(question.prompt)
        try:
            return question.check(value)
        except ValueError as exc:
            typer.secho(f"{value!r}: {exc}", fg=typer.colors.RED, err=True)


def _text(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} is empty")
    return value.strip()


def _web_address(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an absolute http(s) URL: write it like https://example.org")
    return value.strip()


def _zone(value: str) -> str:
    return _field_of(Organisation, "timezone", value.strip())


def _sender(value: str) -> str:
    return _field_of(DeliverySettings, "from_email", value, base_url="https://example.org")


def _base_url(value: str) -> str:
    return _field_of(DeliverySettings, "base_url", value, from_email="digest@example.org")


def _field_of(model: type[BaseModel], name: str, value: str, **others: str) -> str:
    """``value`` as config.toml's own rule for ``model.name`` takes it (ValueError if not)."""
    try:
        checked: str = getattr(model(**{name: value, **others}), name)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ValueError(message) from None
    return checked


QUESTIONS = (
    _Question("name", "The organisation's name", lambda v: _text(v, "the name")),
    _Question(
        "postal_address",
        "Its postal address (shown in every email)",
        lambda v: _text(v, "the postal address"),
    ),
    _Question("website", "Its website (https://…)", _web_address),
    _Question("timezone", "Its timezone (an IANA name, e.g. America/New_York)", _zone),
    _Question("from_email", "The sender address (e.g. news@example.org)", _sender),
    _Question(
        "base_url",
        "The public address of 'digest serve' (e.g. https://news.example.org)",
        _base_url,
    ),
)


# -- the new config.toml, made from the sample -------------------------------------------


@dataclass(frozen=True, slots=True)
class _Statement:
    table: str  # "" before the first header
    key: str | None  # None for a header, a comment or a blank line
    lines: list[str]


def config_text(sample: str, answers: Answers) -> str:
    """The sample config.toml's text with the organisation's answers in (see the module)."""
    values = _values(answers)
    out: list[str] = []
    lists_written = False
    for statement in _statements(sample):
        table, key = statement.table, statement.key
        header = key is None and bool(_HEADER.match(statement.lines[0]))
        if table == "lists" and (key is not None or header):
            if not lists_written:
                out += _lists()
                lists_written = True
            continue
        if key is not None and (table, key) in values:
            out.append(f"{key} = {values[table, key]}")
        elif key is not None and (table, key) in EXAMPLES:
            out += _commented(EXAMPLES[table, key](answers).splitlines())
        elif table in COMMENTED_TABLES and (key is not None or header):
            lines = statement.lines
            if key == "url":
                lines = [f"url = {_toml(_example_url(statement.lines))}"]
            out += _commented(lines)
        else:
            out += statement.lines
    if not lists_written:
        out += ["", *_lists()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out).rstrip("\n") + "\n")


def _values(a: Answers) -> dict[tuple[str, str], str]:
    """The keys whose value is the organisation's, as TOML."""
    given = {
        ("organisation", "name"): a.name,
        ("organisation", "postal_address"): a.postal_address,
        ("organisation", "website"): a.website,
        ("organisation", "reply_to"): a.from_email,
        ("organisation", "timezone"): a.timezone,
        ("delivery", "from_email"): a.from_email,
        ("delivery", "from_name"): a.name,
        ("delivery", "base_url"): a.base_url,
        ("sources.notes", "dir"): NOTES_DIR,
    }
    return {where: _toml(value or "") for where, value in given.items()}


# Keys outside the commented tables whose sample value belongs to the sample's coalition:
# written as a commented example instead.
EXAMPLES: dict[tuple[str, str], Callable[[Answers], str]] = {
    ("edition", "more_url"): lambda a: (
        f"more_url = {_toml((a.website or '').rstrip('/') + '/news/')}"
    ),
    ("print.profiles", "inside_note"): lambda a: (
        'inside_note = """\n'
        f"**Write to us** at {_in_multiline(a.postal_address or '')}. Say here how to get on\n"
        "or off the list, and what you can and cannot help with.\n"
        '"""'
    ),
    ("branding", "logo"): lambda a: 'logo = "logo.png"',
    ("branding", "logo_alt"): lambda a: f"logo_alt = {_toml(a.name or '')}",
    ("branding", "footer_links"): lambda a: (
        "footer_links = [\n"
        '  { label = "Donate", url = "https://example.org/donate/" },\n'
        '  { label = "Mastodon", url = "https://social.example.org/@yourgroup" },\n'
        "]"
    ),
}


def _example_url(lines: list[str]) -> str:
    """A sample source's url (a bundled example file) as an address that is nothing real."""
    url = str(tomllib.loads("\n".join(lines))["url"])
    path = urlsplit(url).path.removeprefix("examples/").lstrip("/")
    return f"https://example.org/{path}"


def _statements(sample: str) -> Iterator[_Statement]:
    """The sample's lines as comments, headers and key = value statements (a value over
    several lines, an array or a multi-line string, is one statement)."""
    lines = sample.splitlines()
    table = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _HEADER.match(line)
        key = _KEY.match(line)
        if header:
            table = header.group(1)
            yield _Statement(table, None, [line])
            i += 1
        elif key:
            end = _value_end(lines, i)
            yield _Statement(table, key.group(1), lines[i:end])
            i = end
        else:
            yield _Statement(table, None, [line])
            i += 1


def _value_end(lines: list[str], start: int) -> int:
    """The line after the key = value statement that starts at ``start``."""
    for end in range(start + 1, len(lines) + 1):
        try:
            tomllib.loads("\n".join(lines[start:end]))
        except tomllib.TOMLDecodeError:
            continue
        return end
    raise DigestError(
        f"the sample config.toml does not parse at line {start + 1}: reinstall digest"
    )


def _commented(lines: list[str]) -> list[str]:
    return [f"# {line}" if line.strip() else "#" for line in lines]


def _lists() -> list[str]:
    out: list[str] = []
    for slug, name, kind, description, double_opt_in in LISTS:
        out += [
            "[[lists]]",
            f"slug = {_toml(slug)}",
            f"name = {_toml(name)}",
            f"kind = {_toml(kind)}",
            f"description = {_toml(description)}",
            f"double_opt_in = {'true' if double_opt_in else 'false'}",
            "",
        ]
    return out


def _toml(value: str) -> str:
    """A TOML basic string."""
    escaped = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return '"' + "".join(escaped.get(c, _control(c)) for c in value) + '"'


def _control(c: str) -> str:
    return f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c


def _in_multiline(value: str) -> str:
    """A value inside a commented multi-line string: one line, no closing quotes."""
    return " ".join(value.split()).replace('"""', "''")


# -- writing -----------------------------------------------------------------------------


def _write_new(config: Path, text: str) -> None:
    """Write config.toml only if it still does not exist, and only once it loads."""
    fd, name = tempfile.mkstemp(dir=config.parent, prefix=".config-", suffix=".toml")
    draft = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        load_settings(draft)  # the sample changed under us: better no file than a broken one
        draft.chmod(0o644)  # mkstemp's 0600 is for secrets; this file holds none
        os.link(draft, config)  # fails if a config.toml appeared meanwhile
    except FileExistsError:
        raise DigestError(f"{config} already exists: nothing changed") from None
    except DigestError as exc:
        raise DigestError(f"the new config.toml would not load ({exc}): report this") from None
    finally:
        draft.unlink(missing_ok=True)


def _say_next(folder: Path, config: Path, answers: Answers) -> None:
    typer.echo(f"wrote {config} for {answers.name}")
    typer.echo(f"  lists: {', '.join(slug for slug, *_ in LISTS)}")
    typer.echo(f"  staff notes (Markdown) go in {folder / NOTES_DIR}")
    typer.echo(f"  people to import: fill in a copy of {folder / TEMPLATE_CSV}")
    here = folder.resolve() == Path.cwd().resolve()
    typer.echo("next:" if here else f"next, in {folder}:")
    typer.echo("  1. add a feed under [[sources.feeds]] in config.toml, then: digest collect")
    typer.echo("  2. import people: digest subscribers import subscribers/you.csv --list weekly")
    typer.echo("  3. digest serve  (the web app and the weekly schedule)")
