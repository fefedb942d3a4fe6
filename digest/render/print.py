"""The print edition: an Edition as a black-and-white PDF for a reader with no internet.

People inside read the digest on paper that a mailroom has photocopied or scanned, and
many facilities refuse packets over a few pages. So the print edition prints whole
articles (``print_body``), fills its profile's ``page_cap`` with its own selection from
everything the edition has (the email's per-section caps do not apply), and needs
nothing online: no "read it online" lines, an article's address printed small as a
reference only. WeasyPrint lays out ``templates/print/print.html.j2`` with
``print.css``; page 1 holds the title, the profile's ``inside_note`` and "In this issue"
with page numbers. When everything does not fit, items are left out (oldest news first,
then other sections oldest first, then the latest events; never the editor's note or a
pinned note), the first item that would come back is printed as far as whole
paragraphs fit, saying how many more it has, and the last page lists what was left out.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from digest.collect.notes import markdown_html
from digest.config import PrintProfile, Settings
from digest.errors import RenderError
from digest.models import Edition, Event, Item, ItemKind, Section
from digest.render.branding import edition_title, print_logo
from digest.render.print_body import ARTICLE_CHARS, Block, Printed, item_blocks, printed_item
from digest.render.print_edition import PrintEdition
from digest.render.templates import html_env, longdate, templates_dir

log = logging.getLogger(__name__)

TEMPLATE = "print/print.html.j2"
STYLESHEET = "print/print.css"
PAGE_SIZES = {"letter": "letter", "a4": "A4"}
# Only the bundled stylesheet and inline data may be read; nothing goes to the network.
LOCAL_SCHEMES = ("file", "data")
# About how many characters of text a page holds (12 pt serif, US Letter): only to aim
# the first layout; every decision is measured from a laid-out document.
PAGE_CHARS = 2600
LEFT_OUT_TITLES = 12  # headlines listed on the last page; the rest are counted


@dataclass(frozen=True, slots=True)
class Slot:
    """One item or event that may be left out: its section's and its own index in the edition."""

    section: int
    index: int
    event: bool


@dataclass(frozen=True, slots=True)
class PrintedEvent:
    anchor: str
    event: Event


@dataclass(slots=True)
class PrintSection:
    key: str
    title: str
    items: list[Printed] = field(default_factory=list)
    events: list[PrintedEvent] = field(default_factory=list)


def render_print(edition: Edition, settings: Settings, profile: PrintProfile) -> PrintEdition:
    """The edition as a PDF of at most ``profile.page_cap`` pages.

    Raises RenderError when the editor's note and pinned notes alone are longer than the cap.
    """
    started = time.perf_counter()
    whole = print_view(edition)
    layout = _Layout(whole, settings, profile)
    order = drop_order(whole)
    cap = profile.page_cap
    dropped, best = _fewest_to_drop(layout, order, cap)
    if dropped:
        best = _fill_with_the_next(layout, order, dropped, cap) or best
    pdf: bytes = best.write_pdf()
    log.info(
        "print edition %s, profile %s: %d pages, %d items left out, %d renders, %.2f s",
        edition.id,
        profile.name,
        _pages(best),
        dropped,
        layout.renders,
        time.perf_counter() - started,
    )
    return PrintEdition(pdf=pdf, pages=_pages(best), left_out=dropped)


def print_view(edition: Edition) -> Edition:
    """The edition with every section whole: what the email left past its caps comes back."""
    sections = tuple(
        replace(
            s,
            items=s.items + s.more_items,
            events=s.events + s.more_events,
            omitted=0,
            more_items=(),
            more_events=(),
        )
        for s in edition.sections
    )
    return replace(edition, sections=sections)


def drop_order(edition: Edition) -> list[Slot]:
    """What goes first when the edition is too long: oldest news, other items, latest events.

    The editor's note is not in a section and pinned items are never listed.
    """
    news: list[tuple[Any, ...]] = []
    others: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    for s, section in enumerate(edition.sections):
        for i, item in enumerate(section.items):
            if not item.pinned:
                pool = news if section.key == "news" else others
                pool.append((item.published, s, i, Slot(s, i, event=False)))
        for i, event in enumerate(section.events):
            events.append((event.start, s, i, Slot(s, i, event=True)))
    news.sort(key=lambda row: row[:3])
    others.sort(key=lambda row: row[:3])
    events.sort(key=lambda row: row[:3], reverse=True)
    return [row[3] for row in (*news, *others, *events)]


def _fewest_to_drop(layout: _Layout, order: list[Slot], cap: int) -> tuple[int, Any]:
    """The fewest items to leave out (in ``order``) for the edition to fit ``cap`` pages.

    A search over how many are left out, every step measured from a laid-out document.
    Until both ends of the bracket are known, the next probe leaves out (or brings back)
    items whose text would about fill the pages over (or under) the cap; then each probe
    is interpolated from the page counts at the ends, and after two probes that moved the
    same end it is the plain midpoint, so a poor guess cannot stall the search.
    """
    chars = [_slot_chars(layout, slot) for slot in order]
    lo, lo_pages = -1, 0  # the most left out that is known to be too long (-1: none yet)
    hi, hi_doc, hi_pages = -1, None, 0  # the fewest known to fit (-1: none yet)
    probe = layout.first_guess(order, cap)
    same_end, last_fit = 0, None
    while True:
        doc = layout.render(order, probe)
        fits = _pages(doc) <= cap
        if fits:
            hi, hi_doc, hi_pages = probe, doc, _pages(doc)
        else:
            lo, lo_pages = probe, _pages(doc)
        if hi == 0 or hi - lo == 1:
            return hi, hi_doc
        if hi < 0 and lo == len(order):
            raise RenderError(
                f"print profile {layout.profile.name!r}: the editor's note and pinned notes "
                f"alone take {lo_pages} pages, over its page_cap of {cap}: shorten the "
                "editor's note, unpin a note or raise page_cap"
            )
        same_end = same_end + 1 if fits == last_fit else 0
        last_fit = fits
        if hi < 0:  # nothing fits yet: leave out about the overflow's worth
            probe = _leave_out(chars, lo, (lo_pages - cap + 0.3) * PAGE_CHARS)
        elif lo < 0:  # everything tried fits: bring back about the room that is left
            probe = _bring_back(chars, hi, (cap - hi_pages + 0.5) * PAGE_CHARS)
        elif same_end >= 2 or lo_pages == hi_pages:
            probe = (lo + hi) // 2
        else:
            share = (lo_pages - cap - 0.5) / (lo_pages - hi_pages)
            probe = min(hi - 1, max(lo + 1, lo + round(share * (hi - lo))))


def _leave_out(chars: list[int], start: int, room: float) -> int:
    """How many to leave out, past ``start``, for about ``room`` characters to go."""
    n, gone = start, 0
    while n < len(chars) and gone < room:
        gone += chars[n]
        n += 1
    return max(start + 1, n)


def _bring_back(chars: list[int], start: int, room: float) -> int:
    """How many to leave out, under ``start``, for about ``room`` characters to come back."""
    n, back = start, 0
    while n > 0 and back + chars[n - 1] <= room:
        back += chars[n - 1]
        n -= 1
    return max(0, min(start - 1, n))


def _fill_with_the_next(layout: _Layout, order: list[Slot], dropped: int, cap: int) -> Any:
    """The first left-out article back in, as many whole paragraphs as still fit, or None.

    The first probe is the paragraphs whose text would about fill the last page's room;
    then a binary search between what fits and what does not.
    """
    slot = order[dropped - 1]
    if slot.event or layout.item_at(slot).kind != ItemKind.ARTICLE:
        return None
    blocks = layout.blocks_of(slot)
    whole = len(printed_item("", layout.item_at(slot), blocks).blocks)  # it did not fit so
    best, lo, hi = None, 0, whole  # lo paragraphs fit (0: trivially), hi do not
    room = PAGE_CHARS * 0.6 - 550
    probe = sum(1 for total in itertools.accumulate(b.chars + 80 for b in blocks) if total <= room)
    while hi - lo > 1:
        mid = min(hi - 1, max(lo + 1, probe)) if probe else (lo + hi) // 2
        probe = 0
        doc = layout.render(order, dropped - 1, partial=(slot, mid))
        if _pages(doc) <= cap:
            best, lo = doc, mid
        else:
            hi = mid
    return best


class _Layout:
    """Renders the edition with its first ``n`` droppable items left out."""

    def __init__(self, edition: Edition, settings: Settings, profile: PrintProfile) -> None:
        org = settings.organisation
        zone = org.zone
        address_lines = [line.strip() for line in org.postal_address.splitlines() if line.strip()]
        last = edition.last_moment.astimezone(zone)
        # WeasyPrint takes most of a second to import: only a layout needs it.
        import weasyprint
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher

        self.weasyprint = weasyprint
        # One font configuration for every layout of this search: the fonts found and
        # loaded by the first are there for the next (a quarter of each later layout).
        self.fonts = FontConfiguration()
        self.edition = edition
        self.profile = profile
        self.template = html_env().get_template(TEMPLATE)
        self.fetcher = URLFetcher(allowed_protocols=LOCAL_SCHEMES, timeout=1)
        self.base_url = str(templates_dir() / "print") + "/"
        self.stylesheets = [
            weasyprint.CSS(
                filename=str(templates_dir() / STYLESHEET),
                url_fetcher=self.fetcher,
                font_config=self.fonts,
            ),
            weasyprint.CSS(
                string=f"@page {{ size: {PAGE_SIZES[profile.paper]}; }}", font_config=self.fonts
            ),
        ]
        self.blocks: dict[tuple[int, int], list[Block]] = {
            (s, i): item_blocks(item)
            for s, section in enumerate(edition.sections)
            for i, item in enumerate(section.items)
        }
        note = edition.editor_note
        self.note_blocks = item_blocks(note) if note is not None else []
        self.context: dict[str, Any] = {
            "org": org,
            "zone": zone,
            "profile": profile,
            "date_words": longdate(last),
            # A fixed document date (the edition's), so the same edition gives the same bytes.
            "created": last.replace(microsecond=0).isoformat(),
            "address_lines": address_lines,
            "address": ", ".join(address_lines),
            "title": edition_title(settings, "print"),
            "logo": print_logo(settings),
            "logo_width": settings.branding.logo_width,
            "logo_alt": settings.branding.logo_alt,
            "inside_note": markdown_html(profile.inside_note) if profile.inside_note else "",
            "editor_note": None if note is None else printed_item("editor", note, self.note_blocks),
        }
        self.renders = 0

    def blocks_of(self, slot: Slot) -> list[Block]:
        return self.blocks[(slot.section, slot.index)]

    def item_at(self, slot: Slot) -> Item:
        return self.edition.sections[slot.section].items[slot.index]

    def first_guess(self, order: list[Slot], cap: int) -> int:
        """How many to leave out for the rest's text to fill about ``cap`` pages."""
        room = cap * PAGE_CHARS - sum(b.chars for b in _protected_blocks(self))
        kept = [_slot_chars(self, slot) for slot in order]
        total = sum(kept)
        n = 0
        while n < len(order) and total > room:
            total -= kept[n]
            n += 1
        return n

    def render(self, order: list[Slot], n: int, *, partial: tuple[Slot, int] | None = None) -> Any:
        dropped = order[:n]
        html = self.template.render(
            sections=self._sections(set(dropped), partial),
            left_out=n,
            left_out_detail=self._detail(dropped),
            left_out_titles=self._titles(dropped),
            **self.context,
        )
        self.renders += 1
        document = self.weasyprint.HTML(
            string=html, base_url=self.base_url, url_fetcher=self.fetcher
        ).render(stylesheets=self.stylesheets, font_config=self.fonts)
        return document

    def _sections(self, gone: set[Slot], partial: tuple[Slot, int] | None) -> list[PrintSection]:
        """The kept items as printed; a section left with nothing is not shown."""
        out = []
        for s, section in enumerate(self.edition.sections):
            printed = PrintSection(section.key, section.title)
            for i, item in enumerate(section.items):
                slot = Slot(s, i, event=False)
                if partial is not None and slot == partial[0]:
                    printed.items.append(
                        printed_item(f"i{s}-{i}", item, self.blocks[(s, i)], partial[1])
                    )
                elif slot not in gone:
                    printed.items.append(printed_item(f"i{s}-{i}", item, self.blocks[(s, i)]))
            for i, event in enumerate(section.events):
                if Slot(s, i, event=True) not in gone:
                    printed.events.append(PrintedEvent(f"e{s}-{i}", event))
            if printed.items or printed.events:
                out.append(printed)
        return out

    def _detail(self, dropped: list[Slot]) -> str:
        """'12 from News, 3 from Coming up', in the edition's section order."""
        counts = Counter(slot.section for slot in dropped)
        sections = self.edition.sections
        return ", ".join(f"{counts[s]} from {sections[s].title}" for s in sorted(counts))

    def _titles(self, dropped: list[Slot]) -> list[str]:
        """The left-out headlines a reader can write to ask for, in the edition's order."""
        ordered = sorted(dropped, key=lambda slot: (slot.section, slot.event, slot.index))
        return [_title_of(self.edition.sections[s.section], s) for s in ordered[:LEFT_OUT_TITLES]]


def _protected_blocks(layout: _Layout) -> list[Block]:
    """The blocks that are printed whatever happens: the editor's note and pinned items."""
    found = list(layout.note_blocks)
    for s, section in enumerate(layout.edition.sections):
        for i, item in enumerate(section.items):
            if item.pinned:
                found += layout.blocks[(s, i)]
    return found


def _slot_chars(layout: _Layout, slot: Slot) -> int:
    """About the room an item takes, in characters of body text: its text, and for its
    title, byline, reference and line in "In this issue" about seven lines more."""
    if slot.event:  # a title, a time, a place, its description and its reference
        event = layout.edition.sections[slot.section].events[slot.index]
        return 400 + len(event.description_full or event.description)
    blocks = layout.blocks_of(slot)
    limit = ARTICLE_CHARS if layout.item_at(slot).kind == ItemKind.ARTICLE else None
    text = sum(b.chars for b in blocks) + 80 * len(blocks)  # a paragraph ends mid-line
    return 550 + (min(text, limit) if limit else text)


def _title_of(section: Section, slot: Slot) -> str:
    return (section.events if slot.event else section.items)[slot.index].title


def _pages(document: Any) -> int:
    return len(document.pages)
