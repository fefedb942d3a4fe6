"""Prison e-messages: the edition as plain text, cut into numbered parts within a service's limits.

CorrLinks takes 13,000 characters of plain text a message, JPay about 6,000, Iowa's service
13,000 characters or 100 lines. The reader has no internet, so every link is written out in
full. Parts are cut between items ("Part i of n"); only an item too long for any part is cut
inside, at line boundaries (and a line too long for a part, inside the line).
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import datetime
from urllib.parse import quote

from digest.collect.sanitize import html_to_text, one_line, strip_controls
from digest.config import Organisation, PrintProfile
from digest.errors import RenderError
from digest.models import Edition, Event, Item, ItemKind, Section
from digest.render.branding import DEFAULT_TITLE
from digest.render.print_body import without_online_only
from digest.render.templates import byline, eventtime, host, longdate, note_title
from digest.render.text import WIDTH, wrap

HEADER = "Part {} of {}"
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_BREAKS = re.compile("\r\n?|[\x85\u2028\u2029]")  # every other line break str.splitlines knows
_C1 = re.compile("[\x80-\x9f\ud800-\udfff]")  # C1 controls, lone surrogates
_MARKUP = re.compile(r"<(?=[A-Za-z/!?])|&(?=#|[A-Za-z][A-Za-z0-9]*;)")
_HOLD = "\x00"  # the space that breaks up "<b" or "&#", kept unbreakable until wrapped
_URL_UNSAFE = re.compile(r'[\s<>"]')
_URL_UNSAFE_ASCII = re.compile(r'[^\x21-\x7e]|[<>"]')
_FOLD = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′‹›", "'"),
        **dict.fromkeys("“”„‟″«»", '"'),
        **dict.fromkeys("‐‑‒–−", "-"),
        **dict.fromkeys("—―", "--"),
        **dict.fromkeys("•‣◦∙·⁃▪", "-"),
        **{"…": "...", "⁄": "/", "×": "x", "€": "EUR", "ß": "ss", "ı": "i"},
        **{"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ł": "l", "Ł": "L"},
        **{"đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ħ": "h", "Ħ": "H"},
    }
)
_DROPPED = {"Mn", "Me", "Cf"}  # combining accents, zero-width and format characters


def emessage_parts(
    edition: Edition, org: Organisation, profile: PrintProfile, *, title: str = DEFAULT_TITLE
) -> list[str]:
    """The edition as plain-text e-messages, each within the profile's character and line caps.

    ``title`` heads the first part ("Weekly digest, Thursday 26 November 2026"): see
    :func:`digest.render.branding.edition_title`.
    """
    blocks = _Writer(org, profile.ascii_only, title).edition(edition)
    digits = 1
    while True:  # the header's width depends on how many parts there are: pack, then number
        widest = len(HEADER.format("9" * digits, "9" * digits))
        chars = profile.emessage_chars - widest - 2
        lines = None if profile.emessage_lines is None else profile.emessage_lines - 2
        _check_room(profile, chars, lines)
        parts = _Packer(chars, lines).pack(blocks)
        if len(str(len(parts))) <= digits:
            n = len(parts)
            return [HEADER.format(i, n) + "\n\n" + "\n".join(p) for i, p in enumerate(parts, 1)]
        digits += 1


def ascii_fold(text: str) -> str:
    """``text`` in plain ASCII: quotes straight, dashes and bullets "-", accents gone, else "?"."""
    text = unicodedata.normalize("NFKD", text.translate(_FOLD)).translate(_FOLD)
    return "".join(_fold_char(c) for c in text)


def _fold_char(c: str) -> str:
    if c.isascii():
        return c
    category = unicodedata.category(c)
    if category in _DROPPED:
        return ""
    return " " if category == "Zs" else "?"


def _check_room(profile: PrintProfile, chars: int, lines: int | None) -> None:
    where = f"print profile {profile.name!r}"
    if lines is not None and lines < 1:
        raise RenderError(
            f"{where}: emessage_lines = {profile.emessage_lines} leaves no room for text under "
            "the 'Part i of n' line and the blank line after it: set it to at least 3 or unset it"
        )
    if chars < WIDTH:
        raise RenderError(
            f"{where}: emessage_chars = {profile.emessage_chars} cannot hold the 'Part i of n' "
            f"line and one {WIDTH}-column line of text: set it to at least 200"
        )


def _unescape(text: str) -> str:
    """Entities left in plain text (a feed escaped twice) become the characters they stand for."""
    for _ in range(4):
        text, before = _ENTITY.sub(lambda m: html.unescape(m.group()), text), text
        if text == before:
            break
    return text


def _day(moment: datetime) -> str:
    """'25 November 2026'."""
    return f"{moment.day} {moment:%B %Y}"


def _said_by(item: Item) -> str:
    try:
        return byline(item)
    except ValueError:  # a malformed URL has no site to name
        return ""


def _host(url: str | None) -> str:
    try:
        return host(url)
    except ValueError:  # a malformed URL has no site to name
        return ""


class _Writer:
    """The edition as blocks of finished lines: the heading, each item, each event, the footer."""

    def __init__(self, org: Organisation, ascii_only: bool, title: str) -> None:
        self.org = org
        self.ascii_only = ascii_only
        self.heading = title

    def clean(self, raw: str) -> str:
        """Plain text with no entity, tag, control or odd line break (and ASCII when asked)."""
        text = _C1.sub("", strip_controls(_BREAKS.sub("\n", _unescape(raw))))
        if self.ascii_only:
            text = ascii_fold(text)
        return _MARKUP.sub(lambda m: m.group() + _HOLD, text)  # "<b" -> "< b", "&#" -> "& #"

    def lines(self, text: str) -> list[str]:
        text = wrap(text).replace(_HOLD, " ")  # (a line can end in, or be, a no-break space)
        return [line.rstrip() for line in text.split("\n")] if text else []

    def para(self, raw: str) -> list[str]:
        return self.lines(self.clean(raw))

    def title(self, raw: str) -> list[str]:
        return self.lines(" ".join(self.clean(raw).split()))

    def url(self, raw: str) -> str:
        """A link to copy by hand: "&amp;" undone, and spaces, brackets (or non-ASCII) %-coded."""
        url = _C1.sub("", strip_controls(raw.strip()))
        while "&amp;" in url or "&#" in url:
            url = url.replace("&amp;", "&").replace("&#", "#")
        unsafe = _URL_UNSAFE_ASCII if self.ascii_only else _URL_UNSAFE
        return unsafe.sub(lambda m: quote(m.group(), safe=""), url)

    def links(self, urls: list[str], numbered: bool = False) -> list[str]:
        pairs = [
            (f"Link [{n}]" if numbered else "Link", self.url(u)) for n, u in enumerate(urls, 1)
        ]
        return [f"{label}: {url}" for label, url in pairs if url]

    def edition(self, edition: Edition) -> list[list[str]]:
        moment = edition.last_moment.astimezone(self.org.zone)
        blocks = [[*self.title(self.org.name), *self.para(f"{self.heading}, {longdate(moment)}")]]
        if edition.editor_note is not None:
            blocks.append(["FROM THE EDITOR", *self.item(edition.editor_note)])
        for section in edition.sections:
            blocks += self.section(section)
        blocks.append(self.title(self.org.name) + self.para(self.org.postal_address))
        return [block for block in blocks if block]

    def section(self, section: Section) -> list[list[str]]:
        blocks = [self.item(i) for i in section.items] + [self.event(e) for e in section.events]
        if section.omitted:
            more = self.clean(
                f"{section.omitted} more in {one_line(section.title)} on our website:"
            )
            url = self.url(section.more_url or self.org.website)
            blocks.append(self.lines(f"{more} {url}"))
        if blocks:  # the section's title goes with its first item, never alone at a part's end
            # Capitals can make markup of what was not ("<ß" is "<SS"): held apart again.
            title = [_MARKUP.sub(r"\g<0> ", line.upper()) for line in self.title(section.title)]
            blocks[0] = title + blocks[0]
        return blocks

    def item(self, item: Item) -> list[str]:
        if item.kind == ItemKind.EDITOR_NOTE:  # under "FROM THE EDITOR", not saying it twice
            lines = self.title(note_title(item.title))
        else:
            lines = self.title(item.title)
            said = _said_by(item) or (_host(self.org.website) if item.kind == ItemKind.NOTE else "")
            day = _day(item.published.astimezone(self.org.zone))
            lines += self.para(f"{said}, {day}" if said else day)
        if item.kind == ItemKind.ARTICLE:
            return lines + self.para(item.summary) + self.links([item.url or ""])
        hrefs: list[str] = []

        def number(href: str) -> int:
            hrefs.append(href)
            return len(hrefs)

        lines += self.para(html_to_text(without_online_only(item.body_html), number))
        return lines + self.links([item.url or ""]) + self.links(hrefs, numbered=True)

    def event(self, event: Event) -> list[str]:
        lines = self.title(event.title) + self.para(f"When: {eventtime(event)}")
        if event.location.strip():
            lines += self.para(f"Where: {one_line(event.location)}")
        return lines + self.para(event.description) + self.links([event.url or ""])


class _Packer:
    """Greedy packing of blocks into part bodies of at most ``chars`` characters and ``lines``."""

    def __init__(self, chars: int, lines: int | None) -> None:
        self.chars = chars
        self.lines = lines
        self.parts: list[list[str]] = []
        self.current: list[str] = []
        self.size = -1  # len("\n".join(self.current)); -1 while the part is empty

    def pack(self, blocks: list[list[str]]) -> list[list[str]]:
        for block in blocks:
            gap = [""] if self.current else []
            if self.fits(gap + block):
                self.add(gap + block)
            elif self.fits(block, alone=True):
                self.flush()
                self.add(block)
            else:  # too long for any part: line by line, the only place an item is cut
                for line in gap + block:
                    self.line(line)
        self.flush()
        return self.parts

    def fits(self, new: list[str], alone: bool = False) -> bool:
        size = (-1 if alone else self.size) + sum(len(line) + 1 for line in new)
        count = (0 if alone else len(self.current)) + len(new)
        return size <= self.chars and (self.lines is None or count <= self.lines)

    def add(self, new: list[str]) -> None:
        self.current += new
        self.size += sum(len(line) + 1 for line in new)

    def flush(self) -> None:
        while self.current and not self.current[-1]:
            self.current.pop()
            self.size -= 1
        if self.current:
            self.parts.append(self.current)
        self.current, self.size = [], -1

    def line(self, line: str) -> None:
        if self.fits([line]):
            if line or self.current:  # no blank line at the top of a part
                self.add([line])
            return
        self.flush()
        while len(line) > self.chars:  # a line longer than a whole part: cut, at a space if near
            cut = line.rfind(" ", self.chars // 2, self.chars) + 1 or self.chars
            self.parts.append([line[:cut]])
            line = line[cut:]
        if line:
            self.add([line])
