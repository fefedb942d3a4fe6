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

import hashlib
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from digest.collect.notes import markdown_html
from digest.collector import collector_paused
from digest.config import PrintProfile, Settings
from digest.errors import RenderError
from digest.models import Edition, Event, Item, ItemKind, Section
from digest.render.branding import edition_title, print_logo
from digest.render.print_body import ARTICLE_CHARS, Block, Printed, item_blocks, printed_item
from digest.render.print_edition import PrintEdition
from digest.render.print_search import LEFT_OUT_CHARS, LEFT_OUT_TITLE, Estimate, search
from digest.render.templates import html_env, longdate, templates_dir

if TYPE_CHECKING:
    from collections.abc import Callable

    from digest.render.print_fork import Ahead
    from digest.render.print_layout import Paginated

log = logging.getLogger(__name__)

TEMPLATE = "print/print.html.j2"
STYLESHEET = "print/print.css"
PAGE_SIZES = {"letter": "letter", "a4": "A4"}
# Only the bundled stylesheet and inline data may be read; nothing goes to the network.
LOCAL_SCHEMES = ("file", "data")
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
    with collector_paused():  # a layout's few hundred thousand boxes, walked again each pass
        dropped, best = _fewest_to_drop(layout, order, profile.page_cap)
        if dropped:
            best = _fill_with_the_next(layout, order, dropped, best) or best
        if not best.printable:  # a probe predicted too long that was the answer after all
            best = layout.render(order, *best.selection)
        pdf: bytes = best.document().write_pdf()
    log.info(
        "print edition %s, profile %s: %d pages, %d items left out, %d renders, %.2f s, "
        "%d of the renders probes, %d more laid out ahead by a second process",
        edition.id,
        profile.name,
        best.count,
        dropped,
        layout.renders,
        time.perf_counter() - started,
        layout.probes,
        layout.ahead_started,
    )
    return PrintEdition(pdf=pdf, pages=best.count, left_out=dropped)


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


def _fewest_to_drop(layout: _Layout, order: list[Slot], cap: int) -> tuple[int, Paginated]:
    """The fewest items to leave out (in ``order``) for the edition to fit ``cap`` pages,
    and that layout (``print_search``: every step measured from a laid-out document)."""
    chars = [_slot_chars(layout, slot) for slot in order]
    kept = list(itertools.accumulate(reversed(chars), initial=0))[::-1]  # of order[n:]
    fixed = sum(b.chars for b in _protected_blocks(layout))

    def base_chars(n: int) -> float:
        box = 0
        if n:
            titles = layout.titles(order[:n])
            box = LEFT_OUT_CHARS + LEFT_OUT_TITLE * sum(len(t) + 2 for t in titles)
        return fixed + kept[n] + box

    estimate = Estimate(base_chars)
    found = search(
        lambda n, printable: layout.render(order, n, printable=printable),
        _measure,
        estimate,
        cap,
        (-1, len(order) + 1, None),
        layout.ahead,
    )
    if found is None:
        alone = layout.render(order, len(order), printable=False).count
        raise RenderError(
            f"print profile {layout.profile.name!r}: the editor's note and pinned notes "
            f"alone take {alone} pages, over its page_cap of {cap}: shorten the "
            "editor's note, unpin a note or raise page_cap"
        )
    layout.measured = estimate.measured
    return found.fit, found.layout


def _measure(laid: Paginated) -> tuple[int, float]:
    return laid.count, laid.count - 1 + laid.last_fill()


def _fill_with_the_next(
    layout: _Layout, order: list[Slot], dropped: int, fitting: Paginated
) -> Paginated | None:
    """The first left-out article back in, as many whole paragraphs as still fit, or None.

    A search over how many of its paragraphs stay out (all of them: the layout that fits;
    none: the one left out before, too long), guided by their characters.
    """
    slot = order[dropped - 1]
    item = layout.item_at(slot) if not slot.event else None
    if item is None or item.kind != ItemKind.ARTICLE:
        return None
    blocks = layout.blocks_of(slot)
    whole = len(printed_item("", item, blocks).blocks)  # it did not fit so
    shown = list(itertools.accumulate((b.chars + 80 for b in blocks[:whole]), initial=0))
    with_it, without = layout.measured[dropped - 1], layout.measured[dropped]

    def base_chars(out: int) -> float:  # ``out`` of its paragraphs left out
        kept = whole - out
        return 0.0 if kept == 0 else 550 + 80 + shown[kept]

    # The model through the two layouts measured: all of it, and none of it.
    estimate = Estimate(base_chars, without, (with_it - without) / base_chars(0))
    estimate.measured.update({0: with_it, whole: without})
    found = search(
        lambda out, printable: layout.render(
            order, dropped - 1, partial=(slot, whole - out), printable=printable
        ),
        _measure,
        estimate,
        layout.profile.page_cap,
        (0, whole, fitting),
        layout.ahead,
    )
    if found is None or found.fit == whole:
        return None
    laid: Paginated = found.layout
    return laid


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
        self.stylesheets = _stylesheets(profile.paper, self.fetcher)
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
        self.probes = 0  # renders without margin boxes (print_layout)
        self.ahead_started = 0  # candidates measured by a forked child (print_fork)
        self.measured: dict[int, float] = {}  # pages used, by how many were left out

    def ahead(self, measure: Callable[[], tuple[int, float]]) -> Ahead | None:
        """``measure()`` started in a forked child, or None where that is not safe or useful."""
        from digest.render.print_fork import start

        started = start(measure)
        self.ahead_started += started is not None
        return started

    def blocks_of(self, slot: Slot) -> list[Block]:
        return self.blocks[(slot.section, slot.index)]

    def item_at(self, slot: Slot) -> Item:
        return self.edition.sections[slot.section].items[slot.index]

    def render(
        self,
        order: list[Slot],
        n: int,
        partial: tuple[Slot, int] | None = None,
        *,
        printable: bool = True,
    ) -> Paginated:
        """The edition with its first ``n`` in ``order`` left out (and ``partial``'s item cut
        to that many blocks), laid out into pages; as a probe when not ``printable``."""
        from digest.render.print_layout import paginate

        html = self.html_for(order, n, partial)
        self.renders += 1
        self.probes += not printable
        return paginate(
            self.weasyprint.HTML(string=html, base_url=self.base_url, url_fetcher=self.fetcher),
            self.stylesheets,
            self.fonts,
            printable=printable,
            selection=(n, partial),
        )

    def html_for(self, order: list[Slot], n: int, partial: tuple[Slot, int] | None) -> str:
        """The print template rendered for that selection."""
        dropped = order[:n]
        return self.template.render(
            sections=self._sections(set(dropped), partial),
            left_out=n,
            left_out_detail=self._detail(dropped),
            left_out_titles=self.titles(dropped),
            **self.context,
        )

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

    def titles(self, dropped: list[Slot]) -> list[str]:
        """The left-out headlines a reader can write to ask for, in the edition's order."""
        ordered = sorted(dropped, key=lambda slot: (slot.section, slot.event, slot.index))
        return [_title_of(self.edition.sections[s.section], s) for s in ordered[:LEFT_OUT_TITLES]]


_parsed: dict[tuple[bytes, str], list[Any]] = {}


def _stylesheets(paper: str, fetcher: Any) -> list[Any]:
    """``print.css`` and the page size, parsed once a process for each text of the file
    (staff may edit it). A parsed stylesheet is only read by a layout; it keeps a font
    configuration only for ``@font-face`` and ``@import`` rules, which print.css has none of
    (a test holds it to that)."""
    import weasyprint

    path = templates_dir() / STYLESHEET
    key = (hashlib.sha256(path.read_bytes()).digest(), paper)
    if key not in _parsed:
        _parsed[key] = [
            weasyprint.CSS(filename=str(path), url_fetcher=fetcher),
            weasyprint.CSS(string=f"@page {{ size: {PAGE_SIZES[paper]}; }}"),
        ]
    return _parsed[key]


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
