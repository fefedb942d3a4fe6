"""Untrusted HTML from feeds and calendars: an allow-list sanitiser, one HTML-to-text converter."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h3",
    "h4",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "ol": {"start"}}
# Dropped with everything inside them: what they hold is code, markup or fallback, not
# text (the parser reads an iframe's or a noscript's inside as text, tags and all).
DROPPED_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "applet",
    "noscript",
    "noembed",
    "noframes",
    "template",
    "svg",
    "math",
    "xmp",
    "title",
    "textarea",
    "select",
}
ALLOWED_SCHEMES = {"http", "https", "mailto"}

_BLOCKS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "hr",
}
# C0 controls (but tab and newlines), DEL, lone surrogates and U+FFFE/U+FFFF: they
# have no business in a newsletter and make the MJML compiler refuse the document.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(\n\s*)+")


def clean_html(fragment: str) -> str:
    """Keep only harmless markup: no scripts, styles, event handlers, frames, forms or odd URLs."""
    return nh3.clean(
        _CONTROLS.sub("", fragment),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        clean_content_tags=DROPPED_WITH_CONTENT,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


class _TextCollector(HTMLParser):
    def __init__(self, on_link: Callable[[str], int] | None) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.on_link = on_link
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS and tag != "li":
            self.parts.append("\n")
        if tag == "a" and self.href and self.on_link is not None:
            self.parts.append(f" [{self.on_link(self.href)}]")
            self.href = None

    def handle_data(self, data: str) -> None:
        # A line break in markup (between list items, say) is only white space.
        self.parts.append(" " if not data.strip() and "\n" in data else data)


def html_to_text(fragment: str, on_link: Callable[[str], int] | None = None) -> str:
    """Readable plain text from an HTML fragment: paragraphs kept, every tag and entity gone.

    With ``on_link``, each link's text is followed by `` [n]``, n being what
    ``on_link(href)`` returns (the text template lists the URLs as references).
    """
    collector = _TextCollector(on_link)
    collector.feed(clean_html(fragment))
    collector.close()
    text = _CONTROLS.sub("", html.unescape("".join(collector.parts)))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def strip_controls(text: str) -> str:
    """``text`` without control characters (tab and newlines stay)."""
    return _CONTROLS.sub("", text)


def one_line(text: str) -> str:
    """Collapse all white space and drop control characters (for titles, locations)."""
    return " ".join(_CONTROLS.sub("", text).split())


def cut_at_word(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` characters at a word boundary, with an ellipsis."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"
