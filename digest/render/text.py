"""The plain-text part: written from its own template, wrapped at 72 columns."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

from digest.collect.sanitize import html_to_text
from digest.config import Settings
from digest.models import Edition
from digest.render.branding import edition_title
from digest.render.templates import text_env

WIDTH = 72


@dataclass(slots=True)
class References:
    """Numbered link references: collected while an item is written, listed after it."""

    urls: list[str] = field(default_factory=list)
    pending: list[tuple[int, str]] = field(default_factory=list)

    def add(self, url: str | None) -> str:
        """The reference marker for ``url`` (empty when there is no link)."""
        if not url:
            return ""
        self.urls.append(url)
        self.pending.append((len(self.urls), url))
        return f"[{len(self.urls)}]"

    def number(self, url: str) -> int:
        self.add(url)
        return len(self.urls)

    def flush(self) -> list[tuple[int, str]]:
        """The references added since the last flush, to print under the item."""
        out, self.pending = self.pending, []
        return out


def _breakable(line: str, width: int = WIDTH) -> str:
    """Cut words longer than a line into pieces, except URLs (which must stay whole)."""
    words = []
    for word in line.split(" "):
        if len(word) > width and "://" not in word and not word.startswith("mailto:"):
            word = " ".join(word[i : i + width] for i in range(0, len(word), width))
        words.append(word)
    return " ".join(words)


# What starts a line of a list or a quote: its wrapped lines go under the item's first word.
_LEAD = re.compile(r"^[ >]*(?:(?:[-*\u2022]|\d{1,9}[.)]) +)?")


def wrap(text: str, indent: str = "") -> str:
    """Each paragraph filled to 72 columns; long URLs are never broken. A list item's
    wrapped lines are indented under its text ("1. " or "- "), a quote's keep their "> "."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    filled = []
    for para in paragraphs:
        lines = [_fill(line, indent) for line in para.split("\n") if line.strip()]
        filled.append("\n".join(lines))
    return "\n\n".join(filled)


def _fill(line: str, indent: str) -> str:
    lead = _LEAD.match(line)
    hanging = lead.group() if lead else ""
    under = "".join(c if c == ">" else " " for c in hanging)
    room = max(WIDTH - len(indent + under), WIDTH // 2)
    return textwrap.fill(
        _breakable(line, room),
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + under,
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_text(edition: Edition, settings: Settings, *, chosen: str = "") -> str:
    """The text/plain part of an edition, with the same placeholders as the HTML
    (``chosen``: the sections a section variant's readers asked for, named)."""
    refs = References()

    def note_text(html: str) -> str:
        return html_to_text(html, refs.number)

    template = text_env().get_template("email/digest.txt.j2")
    text = template.render(
        edition=edition,
        org=settings.organisation,
        refs=refs,
        wrap=wrap,
        note_text=note_text,
        zone=settings.organisation.zone,
        title=edition_title(settings),
        footer_links=settings.branding.footer_links,
        chosen=chosen,
    )
    return "\n".join(line.rstrip() for line in text.strip().split("\n")) + "\n"
