"""Which links an edition has, and where each one sits, for the link check.

The edition's own parts come first, each link named by the item or event it belongs to
(the email's cut and the print edition's rest alike: print prints those too); then the
links only the rendered email has (its header and footer). Links under the web app's
``base_url`` are ours, carry a reader's token and are not checked; nor is anything
that is not http(s) (mailto:, tel:, SendGrid's placeholders).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

from digest.models import Edition, Event, Item, RenderedEmail

EMAIL = "the email (header/footer)"
# A URL written out in plain text, up to a space or a character that closes it.
_BARE_URL = re.compile(r"https?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_TRAILING = ".,;:!?*"  # sentence punctuation after a URL is not part of it


@dataclass(frozen=True, slots=True)
class FoundLink:
    url: str
    where: str  # the item's or event's title, "Editor's note: <title>", or EMAIL


def links_of(edition: Edition, email: RenderedEmail, base_url: str) -> list[FoundLink]:
    """Every http(s) link of ``edition`` and its rendered ``email``, one per (url, where),
    in order of appearance; the email's own links only where the edition has no such
    URL. Links under ``base_url`` are left out."""
    found: dict[tuple[str, str], None] = {}
    for url, where in _edition_links(edition):
        if _checkable(url, base_url):
            found[(url, where)] = None
    seen = {url for url, _ in found}
    for url in [*hrefs_in(email.html), *urls_in(email.text)]:
        if url not in seen and _checkable(url, base_url):
            found[(url, EMAIL)] = None
            seen.add(url)
    return [FoundLink(url, where) for url, where in found]


def hrefs_in(html: str) -> list[str]:
    """Every ``href`` in an HTML fragment or document, entities decoded, in order."""
    parser = _Hrefs()
    parser.feed(html)
    parser.close()
    return parser.hrefs


def urls_in(text: str) -> list[str]:
    """Every http(s) URL written out in plain text, in order."""
    return [m.group(0).rstrip(_TRAILING) for m in _BARE_URL.finditer(text)]


def _edition_links(edition: Edition) -> Iterator[tuple[str, str]]:
    if edition.editor_note is not None:
        yield from _item_links(edition.editor_note, f"Editor's note: {edition.editor_note.title}")
    for section in edition.sections:
        for item in (*section.items, *section.more_items):
            yield from _item_links(item, item.title)
        for event in (*section.events, *section.more_events):
            yield from _event_links(event)


def _item_links(item: Item, where: str) -> Iterator[tuple[str, str]]:
    urls = [item.url] if item.url else []
    urls += _in_text(item.summary) + hrefs_in(item.body_html)
    return ((url, where) for url in urls)


def _event_links(event: Event) -> Iterator[tuple[str, str]]:
    urls = [event.url] if event.url else []
    urls += _in_text(event.description) + _in_text(event.description_full)
    return ((url, event.title) for url in urls)


def _in_text(text: str) -> list[str]:
    """A summary or description is plain text as collected, but may hold markup: its
    hrefs and the URLs written out in it (a calendar's description often has one)."""
    return [*hrefs_in(text), *urls_in(text)]


def _checkable(url: str, base_url: str) -> bool:
    lowered = url.lower()
    if not lowered.startswith(("http://", "https://")):
        return False
    ours = base_url.rstrip("/").lower()
    return not (lowered == ours or lowered.startswith(tuple(ours + c for c in "/?#")))


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value.strip() for name, value in attrs if name == "href" and value]
