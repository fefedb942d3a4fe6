"""Untrusted HTML from feeds and calendars: an allow-list sanitiser, one HTML-to-text converter."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser

import nh3

# What a story's structure needs to survive into print (the email shows a story's summary
# and only notes' bodies): paragraphs, headings, lists, quotes, tables, figure captions.
ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h3",
    "h4",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "ol": {"start"}}
# A picture's alt text, kept as words (``<span class="picture">``), and a note's
# paragraphs marked for the web alone (``[online]``: left out of the print edition).
PICTURE = "picture"
ONLINE_ONLY = "online-only"
ALLOWED_CLASSES = {
    "span": {PICTURE},
    **{tag: {ONLINE_ONLY} for tag in ("p", "li", "ul", "ol", "blockquote", "h3", "h4")},
}
# Headings keep their place under the item's own title: h1 and h2 become h3, h5 and h6 h4.
_HEADING = re.compile(r"<(/?)h([1-6])\b", re.IGNORECASE)
_HEADING_AS = {"1": "3", "2": "3", "3": "3", "4": "4", "5": "4", "6": "4"}
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
# Alt text that says nothing: a file name, or a word standing for "a picture".
_EMPTY_ALT = re.compile(
    r"^(?:\S+\.(?:jpe?g|png|gif|webp|svg|avif|bmp|tiff?)|image|img|photo|picture|"
    r"pic|graphic|spacer|icon|logo|untitled|thumbnail|banner|featured image|[\W\d_]*)$",
    re.IGNORECASE,
)
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
    """Keep only harmless markup: no scripts, styles, event handlers, frames, forms or odd URLs.

    Pictures become their alt text when it says something (nothing is ever fetched);
    headings are moved under the item's title (h1 and h2 to h3, h5 and h6 to h4).
    """
    fragment = _CONTROLS.sub("", fragment)
    fragment = _IMG.sub(_picture_words, fragment)
    fragment = _HEADING.sub(lambda m: f"<{m[1]}h{_HEADING_AS[m[2]]}", fragment)
    cleaned: str = nh3.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=ALLOWED_SCHEMES,
        clean_content_tags=DROPPED_WITH_CONTENT,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    # A class that was not allowed leaves an empty attribute behind (nh3 escapes quotes in
    # text, so this can only be an attribute).
    return cleaned.replace(' class=""', "").strip()


def _picture_words(match: re.Match[str]) -> str:
    """An ``<img>`` as ``(Picture: its alt text)``, or nothing when the alt says nothing."""
    found = _ALT.search(match[0])
    alt = (
        " ".join(html.unescape(next((g for g in found.groups() if g), "")).split()) if found else ""
    )
    if not alt or _EMPTY_ALT.match(alt):
        return " "
    return f'<span class="{PICTURE}">(Picture: {html.escape(alt[:300])})</span>'


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
