"""An item's whole body as print blocks: the paragraphs, headings, lists, quotes and tables
of its sanitised HTML, one block each, so an article is cut only between two of them.

The body is already sanitised (``collect.sanitize.clean_html``: pictures are their alt text
there). Here wrappers (``div``, ``figure``) are opened so their paragraphs count one by
one, loose text between blocks becomes a paragraph, two line breaks in a row end one, and
what is marked for the web alone (``online-only``) is left out. In a story, links keep
their words and lose their address (the story's own address is printed as a reference);
in a note staff wrote, the address is printed after the words.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import lxml.html
from lxml import etree

from digest.collect.sanitize import ONLINE_ONLY
from digest.models import Item, ItemKind

# No one article takes more than about a page and a half: past this many characters of
# text it is cut at a paragraph boundary, so one long read cannot crowd out the week.
ARTICLE_CHARS = 5000
BLOCKS = {"p", "h3", "h4", "ul", "ol", "dl", "blockquote", "pre", "table"}
OPENED = {"div", "figure", "section", "article"}
_BREAKS = re.compile(r"(?:<br\s*/?>\s*){2,}", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Block:
    html: str
    chars: int  # of text: how much room it takes, roughly

    @property
    def is_heading(self) -> bool:
        return self.html.startswith(("<h3", "<h4"))


@dataclass(frozen=True, slots=True)
class Printed:
    """One item as printed: the blocks that fit and how many more paragraphs it has."""

    anchor: str
    item: Item
    blocks: tuple[str, ...]
    more: int = 0


def print_blocks(body_html: str, *, keep_links: bool) -> list[Block]:
    """The body's blocks in order; empty ones (a lone space, a dropped picture) are skipped."""
    if not body_html.strip():
        return []
    root = _without_marked(body_html)
    if not keep_links:
        for link in root.iter("a"):
            link.drop_tag()
    blocks: list[Block] = []
    _collect(root, blocks)
    return blocks


def without_online_only(body_html: str) -> str:
    """The body without what is marked for the web alone (for the e-message text)."""
    if ONLINE_ONLY not in body_html:
        return body_html
    return _inner(_without_marked(body_html))


def _without_marked(body_html: str) -> etree._Element:
    """The body parsed into one ``div``, what is marked ``online-only`` dropped."""
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    for gone in root.find_class(ONLINE_ONLY):
        gone.drop_tree()
    return root


def online_only_texts(body_html: str) -> list[str]:
    """The words of each part marked for the web alone (what the console shows as such)."""
    if ONLINE_ONLY not in body_html:
        return []
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    marked = [el for el in root.find_class(ONLINE_ONLY) if not _inside_marked(el)]
    return [_SPACE.sub(" ", el.text_content()).strip() for el in marked]


def _inside_marked(element: etree._Element) -> bool:
    parent = element.getparent()
    while parent is not None:
        if ONLINE_ONLY in (parent.get("class") or "").split():
            return True
        parent = parent.getparent()
    return False


def _collect(parent: etree._Element, blocks: list[Block]) -> None:
    run: list[str] = [_escape(parent.text or "")]
    for child in parent:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in OPENED:
            _paragraphs("".join(run), blocks)
            run = []
            _collect(child, blocks)
        elif tag in BLOCKS:
            _paragraphs("".join(run), blocks)
            run = []
            if tag == "p":
                _paragraphs(_inner(child), blocks)
            else:
                _add(_html(child), child.text_content(), blocks)
        elif tag == "figcaption":
            _paragraphs("".join(run), blocks)
            run = []
            _paragraphs(_inner(child), blocks)
        elif tag == "hr":
            _paragraphs("".join(run), blocks)
            run = []
        elif tag:
            run.append(_html(child))
        run.append(_escape(child.tail or ""))
    _paragraphs("".join(run), blocks)


def _paragraphs(inner: str, blocks: list[Block]) -> None:
    """Loose inline HTML as paragraphs, split where two line breaks stand in a row."""
    for piece in _BREAKS.split(inner):
        piece = re.sub(r"^(?:\s|<br\s*/?>)+|(?:\s|<br\s*/?>)+$", "", piece, flags=re.I)
        if piece:
            text = lxml.html.fragment_fromstring(piece, create_parent="p").text_content()
            _add(f"<p>{piece}</p>", text, blocks)


def _add(html: str, text: str, blocks: list[Block]) -> None:
    words = _SPACE.sub(" ", text).strip()
    if words:
        blocks.append(Block(html, len(words)))


def _inner(element: etree._Element) -> str:
    """What is inside the element, as HTML: its text, children and their tails."""
    return _escape(element.text or "") + "".join(
        _html(child) + _escape(child.tail or "") for child in element
    )


def _html(element: etree._Element) -> str:
    return str(lxml.html.tostring(element, encoding="unicode", with_tail=False))


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def item_blocks(item: Item) -> list[Block]:
    """A story's whole body (or its summary when the feed gave nothing more); a note's body."""
    blocks = print_blocks(item.body_html, keep_links=item.kind != ItemKind.ARTICLE)
    if not blocks and item.summary.strip():
        blocks = print_blocks(f"<p>{html.escape(item.summary)}</p>", keep_links=False)
    return blocks


def printed_item(anchor: str, item: Item, blocks: list[Block], limit: int | None = None) -> Printed:
    """The item's blocks, cut at a paragraph boundary: at ``limit`` blocks, or for a story
    at about ``ARTICLE_CHARS``; never right after a heading."""
    keep = len(blocks) if limit is None else limit
    if item.kind == ItemKind.ARTICLE and limit is None:
        chars, keep = 0, 0
        while keep < len(blocks) and (keep == 0 or chars + blocks[keep].chars <= ARTICLE_CHARS):
            chars += blocks[keep].chars
            keep += 1
    while 1 < keep < len(blocks) and blocks[keep - 1].is_heading:
        keep -= 1
    shown = tuple(b.html for b in blocks[:keep])
    return Printed(anchor, item, shown, more=len(blocks) - keep)
