"""The Jinja2 environments and the words the templates share: dates and times, bylines,
the editor's note's heading."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from markupsafe import Markup

from digest.collect.sanitize import strip_controls
from digest.models import Event, Item
from digest.paths import bundled

if TYPE_CHECKING:
    import jinja2


def templates_dir() -> Path:
    return bundled("templates")


@cache
def html_env() -> jinja2.Environment:
    """For MJML and HTML: everything is escaped unless marked safe."""
    return _env(autoescape=True)


@cache
def text_env() -> jinja2.Environment:
    """For plain text: nothing is escaped (there is no markup to break)."""
    return _env(autoescape=False)


def _env(*, autoescape: bool) -> jinja2.Environment:
    import jinja2  # imported here: a build served from the render cache renders nothing

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=autoescape,  # noqa: S701 - only the plain-text part is unescaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_printable,
    )
    env.filters.update(
        longdate=longdate,
        shortdate=shortdate,
        eventtime=eventtime,
        host=host,
        byline=byline,
        note_title=note_title,
    )
    return env


def _printable(value: object) -> object:
    """Every printed value loses control characters, which mail clients and MJML refuse."""
    if isinstance(value, Markup):
        return Markup(strip_controls(value))  # noqa: S704 - already safe markup, only shortened
    if isinstance(value, str):
        return strip_controls(value)
    return value


def longdate(moment: datetime) -> str:
    """'Thursday 26 November 2026'."""
    return f"{moment:%A} {moment.day} {moment:%B %Y}"


def shortdate(moment: datetime) -> str:
    """'26 Nov'."""
    return f"{moment.day} {moment:%b}"


def _clock(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes} {'am' if moment.hour < 12 else 'pm'}"


def eventtime(event: Event) -> str:
    """'Tuesday 1 December, 6:30 pm to 8:30 pm' (or 'all day'), in words."""
    day = f"{event.start:%A} {event.start.day} {event.start:%B}"
    if event.all_day:
        return f"{day}, all day"
    if event.end is None:
        return f"{day}, {_clock(event.start)}"
    if event.end.date() == event.start.date():
        return f"{day}, {_clock(event.start)} to {_clock(event.end)}"
    return f"{day}, {_clock(event.start)} to {longdate(event.end)} {_clock(event.end)}"


def host(url: str | None) -> str:
    """The site a link goes to, without 'www.'."""
    if not url:
        return ""
    return (urlsplit(url).hostname or "").removeprefix("www.")


def byline(item: Item) -> str:
    """Who wrote it and where it ran, as a reader expects: "By Jane Doe, The Guardian",
    "By Jane Doe", "The Guardian"; the link's site only when nothing else is known."""
    if item.author and item.outlet:
        return f"By {item.author}, {item.outlet}"
    if item.author:
        return f"By {item.author}"
    return item.outlet or host(item.url)


_NOTE_PREFIX = re.compile(
    r"^\s*from the editor(?![\w'\u2019])\s*[:,.|\-\u2013\u2014]*\s*", re.IGNORECASE
)


def note_title(title: str) -> str:
    """The editor's note's own title under the "From the editor" heading, without saying it
    twice: "From the editor: a week of small wins" is "A week of small wins", and a note
    titled just "From the editor" has no title of its own."""
    rest = _NOTE_PREFIX.sub("", title, count=1).strip()
    if rest == title.strip():
        return rest
    return rest[:1].upper() + rest[1:]
