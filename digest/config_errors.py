"""What is wrong with a configuration, said as one line per problem naming the key: the
checks across tables, and pydantic's errors turned into the project's words."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from digest.config import EditionSettings, ListSettings, Sources


def describe_validation_error(exc: ValidationError, source: Path, data: dict[str, Any]) -> str:
    """One line per problem, each naming the key and where it came from."""
    lines = []
    for err in exc.errors():
        loc = err["loc"]
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a check across tables: its message names the keys
            lines.append(f"{source}: {msg}")
            continue
        key = _dotted(loc)
        in_file = _present(data, loc[:-1] if err["type"] == "missing" else loc)
        where = str(source) if in_file else _env_name(loc)
        if err["type"] == "extra_forbidden":
            lines.append(
                f"{where}: unknown key {key!r}: check its spelling against the "
                "commented sample config.toml"
            )
        elif err["type"] == "missing":
            lines.append(f"{where}: {key} is required: add it")
        else:
            lines.append(f"{where}: {key}: {msg} (got {err.get('input')!r})")
    return "; ".join(lines)


def place(table: str, index: int) -> str:
    """A position in config.toml as people count: the first [[sources.feeds]] is
    ``sources.feeds[1]``."""
    return f"{table}[{index + 1}]"


def list_problems(lists: list[ListSettings]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for i, item in enumerate(lists):
        if item.slug in seen:
            problems.append(
                f"{place('lists', i)}: the slug {item.slug!r} is used by an earlier list: "
                "give each [[lists]] its own slug"
            )
        seen.add(item.slug)
    return problems


# A reader's chosen sections are stored joined by ","; their rendering is named with "+"
# between the keys and "~" before them, and its files with "/": a key holding one of these
# (or only dots, or nothing) would be misread.
SECTION_KEY_SEPARATORS = ",+~/\\"


def section_problems(edition: EditionSettings, sources: Sources) -> list[str]:
    known = ", ".join(edition.sections)
    problems = _section_key_problems(edition.sections)
    problems += [
        f"{place('sources.feeds', i)}.section {feed.section!r} is not in edition.sections "
        f"({known}): add it there, or pick one of those"
        for i, feed in enumerate(sources.feeds)
        if feed.section not in edition.sections
    ]
    caps = edition.max_items_per_section
    if isinstance(caps, dict):
        problems += [
            f"edition.max_items_per_section.{key} names no section in edition.sections ({known})"
            for key in caps
            if key not in edition.sections
        ]
    return problems


def _section_key_problems(keys: list[str]) -> list[str]:
    problems = []
    for i, key in enumerate(keys):
        where = f"{place('edition.sections', i)} {key!r}"
        if not key.strip(".") or any(
            not c.isprintable() or c in SECTION_KEY_SEPARATORS for c in key
        ):
            problems.append(
                f"{where} is not a section key: use letters, digits, '-' or '_' (none of "
                f"{SECTION_KEY_SEPARATORS}); its title goes in edition.section_titles"
            )
        elif key in keys[:i]:
            problems.append(f"{where} is listed twice: list each section once")
    return problems


def approval_problems(edition: EditionSettings, lists: list[ListSettings]) -> list[str]:
    if not edition.require_approval or any(x.slug == edition.preview_list for x in lists):
        return []
    known = ", ".join(x.slug for x in lists) or "none"
    return [
        f"edition.preview_list {edition.preview_list!r} names no list in [[lists]] (known: "
        f"{known}), and edition.require_approval is on: add that list or name another"
    ]


def _env_name(loc: tuple[int | str, ...]) -> str:
    names = [
        str(p).upper() for p in loc if isinstance(p, str) and p not in {"int", "dict[str,int]"}
    ]
    return "environment variable DIGEST_" + "__".join(names) + " or a flag"


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"  # counted as people count: the first is 1
        elif part in {"int", "dict[str,int]"}:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _present(data: Any, loc: tuple[int | str, ...]) -> bool:
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
        else:
            return not isinstance(part, str) or part in {"int", "dict[str,int]"}
    return True
