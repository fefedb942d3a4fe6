"""Markdown written by staff (an alert's body) as plain text for the text part: written from
the Markdown itself, not scraped from its HTML, so a numbered list stays numbered (from
its own first number), nested lists and quotes keep their place, and each link is a
numbered reference listed under the text.

The result is unwrapped: :func:`digest.render.text.wrap` fills it, indenting a list
item's wrapped lines under its first word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

from digest.collect.sanitize import strip_controls
from digest.render.text import References

LINK_SCHEMES = ("http", "https", "mailto")


def markdown_text(markdown: MarkdownIt, source: str, refs: References) -> str:
    """``source`` as plain text: paragraphs apart, "1. " and "- " list markers, "> " quotes."""
    writer = _Writer(refs)
    for token in markdown.parse(source):
        writer.block(token)
    text = "\n".join(line.rstrip() for line in writer.lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return strip_controls(text).strip()


@dataclass(slots=True)
class _Writer:
    refs: References
    lines: list[str] = field(default_factory=list)
    indents: list[str] = field(default_factory=list)  # one per open list item
    numbers: list[int | None] = field(default_factory=list)  # per open list: the next number
    loose: list[bool] = field(default_factory=list)  # per open list: paragraphs apart
    quotes: int = 0
    marker: str | None = None  # the open item's marker, until its first line is written

    def prefix(self) -> str:
        quote = "> " * self.quotes
        if self.marker is not None:
            lead, self.marker = self.marker, None
            return quote + lead
        return quote + (self.indents[-1] if self.indents else "")

    def write(self, text: str) -> None:
        for i, line in enumerate(text.split("\n")):
            first = self.prefix() if i == 0 else "> " * self.quotes + self.continued()
            self.lines.append(first + line.strip())

    def continued(self) -> str:
        return self.indents[-1] if self.indents else ""

    def gap(self) -> None:
        if self.lines and self.lines[-1].strip(" >"):
            self.lines.append("> " * self.quotes if self.quotes else "")

    def block(self, token: Any) -> None:
        kind = token.type
        if kind == "inline":
            self.write(self.inline(token.children or []))
        elif kind in ("paragraph_close", "heading_close") and not token.hidden:
            if self.loose and kind == "paragraph_close":
                self.loose[-1] = True
                self.lines.append("")  # a loose list: its paragraphs apart
            else:
                self.gap()
        elif kind.endswith("list_open") or kind.endswith("list_close") or kind.startswith("list_"):
            self.list_part(token)
        elif kind.startswith("blockquote_"):
            self.quote_part(kind == "blockquote_open")
        elif kind in ("code_block", "fence", "hr"):
            self.write("* * *" if kind == "hr" else token.content.rstrip("\n"))
            self.gap()

    def list_part(self, token: Any) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            ordered = kind == "ordered_list_open"
            self.numbers.append(int(token.attrs.get("start", 1)) if ordered else None)
            self.loose.append(False)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.numbers.pop()
            self.loose.pop()
            if not self.loose:
                self.gap()
            elif self.loose[-1]:
                self.lines.append("")
        elif kind == "list_item_open":
            number = self.numbers[-1]
            marker = "- " if number is None else f"{number}{token.markup} "
            if number is not None:  # as the HTML counts: from the first number, one by one
                self.numbers[-1] = number + 1
            base = self.continued()
            self.marker = base + marker
            self.indents.append(base + " " * len(marker))
        elif kind == "list_item_close":
            self.indents.pop()
            self.marker = None

    def quote_part(self, opening: bool) -> None:
        if opening:
            self.quotes += 1
            return
        self.quotes -= 1
        if self.lines and not self.lines[-1].strip(" >"):
            self.lines[-1] = "> " * self.quotes  # the quote's last gap is the outer one
        else:
            self.gap()

    def inline(self, children: Sequence[Any]) -> str:
        out: list[str] = []
        href: str | None = None
        for child in children:
            kind = child.type
            if kind in ("text", "code_inline"):
                out.append(child.content)
            elif kind == "softbreak":
                out.append(" ")
            elif kind == "hardbreak":
                out.append("\n")
            elif kind == "image":
                out.append(child.content)  # its alt text
            elif kind == "link_open":
                link = str(child.attrs.get("href") or "")
                shown = _scheme(link) in LINK_SCHEMES and child.markup != "autolink"
                href = link if shown else None  # an autolink's text is its address already
            elif kind == "link_close" and href:
                out.append(f" [{self.refs.number(href)}]")
                href = None
        return "".join(out)


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # a malformed address is shown as its text alone
        return ""
