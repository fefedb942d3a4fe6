"""The print edition: an Edition as a black-and-white PDF that fits a facility's page cap.

People inside read the digest on paper that a mailroom has photocopied or
scanned, and many facilities refuse packets over a few pages. WeasyPrint lays
out ``templates/print/print.html.j2`` with ``print.css``; when the edition is
longer than the profile's ``page_cap``, items are left out (oldest news first,
then other sections oldest first, then the latest events; never the editor's
note or a pinned note) and the last page says how many and where to read them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import weasyprint
from weasyprint.urls import URLFetcher

from digest.config import PrintProfile, Settings
from digest.errors import RenderError
from digest.models import Edition, Section
from digest.render.branding import edition_title, print_logo
from digest.render.templates import html_env, longdate, templates_dir

log = logging.getLogger(__name__)

TEMPLATE = "print/print.html.j2"
STYLESHEET = "print/print.css"
PAGE_SIZES = {"letter": "letter", "a4": "A4"}
# Only the bundled stylesheet and inline data may be read; nothing goes to the network.
LOCAL_SCHEMES = ("file", "data")


@dataclass(frozen=True, slots=True)
class PrintEdition:
    """A print-ready PDF and what it took to fit the page cap."""

    pdf: bytes
    pages: int
    left_out: int  # items dropped to respect the page cap


@dataclass(frozen=True, slots=True)
class Slot:
    """One item or event that may be left out: its section's and its own index in the edition."""

    section: int
    index: int
    event: bool


def render_print(edition: Edition, settings: Settings, profile: PrintProfile) -> PrintEdition:
    """The edition as a PDF of at most ``profile.page_cap`` pages.

    Raises RenderError when the editor's note and pinned notes alone are longer than the cap.
    """
    started = time.perf_counter()
    layout = _Layout(edition, settings, profile)
    order = drop_order(edition)
    cap = profile.page_cap

    best = layout.render(order, 0)
    dropped = 0
    if _pages(best) > cap:
        core = layout.render(order, len(order))
        if _pages(core) > cap:
            raise RenderError(
                f"print profile {profile.name!r}: the editor's note and pinned notes alone "
                f"take {_pages(core)} pages, over its page_cap of {cap}: shorten the "
                "editor's note, unpin a note or raise page_cap"
            )
        dropped, best = _fewest_to_drop(layout, order, cap, _pages(best), core)

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


def _fewest_to_drop(
    layout: _Layout, order: list[Slot], cap: int, full_pages: int, core: Any
) -> tuple[int, Any]:
    """Binary search for the fewest items to leave out, given that leaving out all is enough.

    Page counts fall almost linearly as items are left out, so each split point is
    interpolated from the counts at the bracket's ends, aiming between the last count
    that fits and the first that does not; after two probes that moved the same end,
    the split is the plain midpoint, so a poor guess cannot stall the search.
    """
    lo, lo_pages = 0, full_pages  # too long
    hi, hi_doc, hi_pages = len(order), core, _pages(core)  # fits
    same_end = 0
    last_fit: bool | None = None
    while hi - lo > 1:
        if same_end >= 2:
            probe = (lo + hi) // 2
        else:
            share = (lo_pages - cap - 0.5) / (lo_pages - hi_pages)
            probe = min(hi - 1, max(lo + 1, lo + round(share * (hi - lo))))
        doc = layout.render(order, probe)
        fits = _pages(doc) <= cap
        if fits:
            hi, hi_doc, hi_pages = probe, doc, _pages(doc)
        else:
            lo, lo_pages = probe, _pages(doc)
        same_end = same_end + 1 if fits == last_fit else 0
        last_fit = fits
    return hi, hi_doc


class _Layout:
    """Renders the edition with its first ``n`` droppable items left out."""

    def __init__(self, edition: Edition, settings: Settings, profile: PrintProfile) -> None:
        org = settings.organisation
        zone = org.zone
        address_lines = [line.strip() for line in org.postal_address.splitlines() if line.strip()]
        last = edition.last_moment.astimezone(zone)
        self.edition = edition
        self.template = html_env().get_template(TEMPLATE)
        self.fetcher = URLFetcher(allowed_protocols=LOCAL_SCHEMES, timeout=1)
        self.base_url = str(templates_dir() / "print") + "/"
        self.stylesheets = [
            weasyprint.CSS(filename=str(templates_dir() / STYLESHEET), url_fetcher=self.fetcher),
            weasyprint.CSS(string=f"@page {{ size: {PAGE_SIZES[profile.paper]}; }}"),
        ]
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
        }
        self.renders = 0

    def render(self, order: list[Slot], n: int) -> Any:
        dropped = order[:n]
        html = self.template.render(
            edition=self.edition,
            sections=_kept_sections(self.edition, dropped),
            left_out=n,
            left_out_detail=self._detail(dropped),
            **self.context,
        )
        self.renders += 1
        document = weasyprint.HTML(
            string=html, base_url=self.base_url, url_fetcher=self.fetcher
        ).render(stylesheets=self.stylesheets)
        return document

    def _detail(self, dropped: list[Slot]) -> str:
        """'12 from News, 3 from Coming up', in the edition's section order."""
        counts = Counter(slot.section for slot in dropped)
        sections = self.edition.sections
        return ", ".join(f"{counts[s]} from {sections[s].title}" for s in sorted(counts))


def _kept_sections(edition: Edition, dropped: list[Slot]) -> list[Section]:
    """The sections without the dropped items; a section left with nothing is not shown."""
    gone = {(slot.section, slot.index, slot.event) for slot in dropped}
    kept = []
    for s, section in enumerate(edition.sections):
        items = tuple(x for i, x in enumerate(section.items) if (s, i, False) not in gone)
        events = tuple(x for i, x in enumerate(section.events) if (s, i, True) not in gone)
        if items or events:
            kept.append(replace(section, items=items, events=events))
    return kept


def _pages(document: Any) -> int:
    return len(document.pages)
