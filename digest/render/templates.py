"""The Jinja2 environments and the date and time words the templates share."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from digest.collect.sanitize import strip_controls
from digest.models import Event
from digest.paths import bundled


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
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=autoescape,  # noqa: S701 - only the plain-text part is unescaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_printable,
    )
    env.filters.update(longdate=longdate, shortdate=shortdate, eventtime=eventtime, host=host)
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
