"""Accessibility of a built email, checked on its HTML without a browser.

The rules are the ones mail clients make matter: ``lang`` and ``dir`` on ``html`` and on
a wrapper in ``body`` (some clients strip the ``html`` element), ``role="presentation"``
on layout tables, ``alt`` on every image, headings that never skip a level going down,
one main landmark, link text that says where it goes, and enough contrast between each
configured pair of colours. The browser tests keep axe-core as the second opinion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import lxml.html
from lxml import etree

from digest.config_branding import MIN_CONTRAST, contrast_ratio

VAGUE_LINKS = {"click here", "here", "read more", "more", "link", "this link", "learn more"}
_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: which rule, and where and what, in words staff can act on."""

    rule: str
    what: str


@dataclass(frozen=True, slots=True)
class ColourPair:
    name: str  # "links on white"
    foreground: str  # #rrggbb
    background: str


def check_html(html: str, pairs: Iterable[ColourPair] = ()) -> list[Finding]:
    """Every rule's findings for one email's HTML, in rule order; empty when it passes."""
    root = lxml.html.document_fromstring(html)
    found: list[Finding] = []
    for rule in (_language, _layout_tables, _image_alt, _heading_order, _main, _link_text):
        found += rule(root)
    found += _contrast(pairs)
    return found


def _language(root: etree._Element) -> list[Finding]:
    out = []
    if not (root.get("lang") and root.get("dir")):
        out.append(Finding("language", "the html element needs lang and dir"))
    body = root.find("body")
    wrapped = body is not None and any(
        el.get("lang") and el.get("dir") for el in body.iter() if isinstance(el.tag, str)
    )
    if not wrapped:
        out.append(
            Finding("language", "no wrapper in body has lang and dir (clients strip <html>)")
        )
    return out


def _layout_tables(root: etree._Element) -> list[Finding]:
    bare = [
        t for t in root.iter("table") if t.get("role") != "presentation" and not list(t.iter("th"))
    ]
    return (
        [Finding("layout-tables", f'{len(bare)} layout table(s) without role="presentation"')]
        if bare
        else []
    )


def _image_alt(root: etree._Element) -> list[Finding]:
    return [
        Finding("image-alt", f"an image has no alt: {img.get('src', '')[:80]}")
        for img in root.iter("img")
        if img.get("alt") is None
    ]


def _heading_order(root: etree._Element) -> list[Finding]:
    out, last = [], 0
    for el in root.iter("h1", "h2", "h3", "h4", "h5", "h6"):
        level = int(el.tag[1])
        if last and level > last + 1:
            words = _words(el)[:60]
            out.append(Finding("heading-order", f"h{level} “{words}” follows h{last}"))
        last = level
    return out


def _main(root: etree._Element) -> list[Finding]:
    mains = [el for el in root.iter() if el.tag == "main" or el.get("role") == "main"]
    if len(mains) == 1:
        return []
    return [Finding("main-landmark", f"{len(mains)} main landmarks: the email needs one")]


def _link_text(root: etree._Element) -> list[Finding]:
    out = []
    for link in root.iter("a"):
        words = _words(link) or " ".join(img.get("alt", "") for img in link.iter("img")).strip()
        if not words:
            out.append(Finding("link-text", f"a link has no text: {link.get('href', '')[:80]}"))
        elif words.lower().strip(" .:!›»→") in VAGUE_LINKS:
            out.append(Finding("link-text", f"link text “{words}” does not say where it goes"))
        elif _URL.match(words):
            out.append(Finding("link-text", f"a bare address as link text: {words[:80]}"))
    return out


def _contrast(pairs: Iterable[ColourPair]) -> list[Finding]:
    out = []
    for pair in pairs:
        ratio = contrast_ratio(pair.foreground, pair.background)
        if ratio < MIN_CONTRAST:
            out.append(
                Finding(
                    "contrast",
                    f"{pair.name} ({pair.foreground} on {pair.background}) has a contrast "
                    f"of {ratio:.2f}:1, under {MIN_CONTRAST}:1",
                )
            )
    return out


def _words(element: etree._Element) -> str:
    return _SPACE.sub(" ", element.text_content()).strip()


# The templates' own colours (templates/email/styles.css, dark.css and base.mjml.j2's
# backgrounds); a test reads them there, so this list cannot drift from the templates.
TEXT, LINK, META, FOOTER = "#1a1a1a", "#0b5394", "#555555", "#4d4d4d"
WHITE, PAGE = "#ffffff", "#f2f2f2"
DARK_TEXT, DARK_LINK, DARK_META, DARK_SHEET = "#e8e8e8", "#8ab4f8", "#bdbdbd", "#1e1e1e"


def colour_pairs(brand_colour: str | None) -> list[ColourPair]:
    """Every pair of colours the email shows text in, the brand colour's included."""
    link = brand_colour or LINK
    pairs = [
        ColourPair("text on white", TEXT, WHITE),
        ColourPair("links on white", link, WHITE),
        ColourPair("dates and bylines on white", META, WHITE),
        ColourPair("the footer on the page", FOOTER, PAGE),
        ColourPair("dark mode: text", DARK_TEXT, DARK_SHEET),
        ColourPair("dark mode: links", DARK_LINK, DARK_SHEET),
        ColourPair("dark mode: dates and bylines", DARK_META, DARK_SHEET),
    ]
    if brand_colour:
        pairs.append(ColourPair("white on the header bar", WHITE, brand_colour))
    return pairs
