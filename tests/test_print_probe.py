"""Candidates the page-cap search expects to be too long are laid out as probes: without
their page-margin boxes (running head, return address, page numbers), which sit outside
the page's content area. A probe must break into the very pages a full layout does, and
the PDF must stay the one a full layout of the answer gives, even when a probe turned out
to be the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from digest.config import PrintProfile
from digest.models import Edition
from digest.render import print as printing
from tests.golden_edition import golden_settings
from tests.test_print import big_edition
from tests.test_print_inside import INSIDE_NOTE, make_edition

EDITIONS: dict[str, Callable[[], Edition]] = {
    "stories": make_edition,  # several paragraphs a story, one long read in nine
    "notes-and-events": lambda: big_edition(60),  # one paragraph each, events kept whole
    "fewer-notes": lambda: big_edition(30),
    "short": lambda: big_edition(8),  # on A4 at 3 pages (no inside note), one left out fits
}


def layout_of(edition: str, paper: str, cap: int) -> tuple[printing._Layout, list[Any]]:
    note = "" if edition == "short" else INSIDE_NOTE
    profile = PrintProfile(name="p", paper=paper, page_cap=cap, inside_note=note)
    whole = printing.print_view(EDITIONS[edition]())
    return printing._Layout(whole, golden_settings(), profile), printing.drop_order(whole)


def pages_of(laid: Any) -> list[list[tuple[str, tuple[float, ...]]]]:
    """Every page's anchors and where they stand: what is on which page, to the point."""
    return [
        sorted((name, tuple(round(v, 3) for v in at)) for name, at in page.anchors.items())
        for page in laid.rendering.pages
    ]


@pytest.mark.parametrize(
    ("edition", "paper", "candidates"),
    [
        ("stories", "letter", (8, 9, 32)),  # 32 left out: 2 pages, the last 13% full
        ("notes-and-events", "a4", (26, 27, 36)),  # 36: 9 pages, the last 7% full
        ("short", "a4", (0, 1)),
    ],
)
def test_a_probe_breaks_into_the_same_pages_as_a_full_layout(
    edition: str, paper: str, candidates: tuple[int, ...]
) -> None:
    layout, order = layout_of(edition, paper, 6)
    for n in candidates:
        full = layout.render(order, n)
        probe = layout.render(order, n, printable=False)
        assert not probe.printable and full.printable
        assert probe.count == full.count
        assert probe.last_fill() == full.last_fill()
        assert pages_of(probe) == pages_of(full)


def plain_pdf(layout: printing._Layout, order: list[Any], n: int) -> bytes:
    """WeasyPrint's own ``HTML.render().write_pdf()`` of the edition with ``n`` left out."""
    html = layout.weasyprint.HTML(
        string=layout.html_for(order, n, None), base_url=layout.base_url, url_fetcher=layout.fetcher
    )
    pdf: bytes = html.render(stylesheets=layout.stylesheets, font_config=layout.fonts).write_pdf()
    return pdf


@pytest.mark.parametrize(
    ("edition", "paper", "cap"),
    [
        ("stories", "letter", 6),
        ("stories", "a4", 4),
        ("notes-and-events", "letter", 3),
        ("fewer-notes", "a4", 4),  # the answer's last page half empty
        ("short", "a4", 3),  # one left out: without it, no "Not printed here" at all
    ],
)
def test_a_probe_that_is_the_answer_is_printed_in_full(
    monkeypatch: pytest.MonkeyPatch, edition: str, paper: str, cap: int
) -> None:
    layout, order = layout_of(edition, paper, cap)
    settings, whole, profile = golden_settings(), layout.edition, layout.profile
    expected = printing.render_print(whole, settings, profile)
    if edition != "stories":  # one paragraph an item: the answer is a number left out
        assert expected.pdf == plain_pdf(layout, order, expected.left_out)
    search = printing.search

    def every_candidate_a_probe(lay_out: Any, *args: Any) -> Any:
        return search(lambda n, printable: lay_out(n, False), *args)

    monkeypatch.setattr(printing, "search", every_candidate_a_probe)
    got = printing.render_print(whole, settings, profile)
    assert (got.pages, got.left_out) == (expected.pages, expected.left_out)
    assert got.pdf == expected.pdf
    if edition == "short":
        assert got.left_out == 1


def test_a_probe_is_never_printed() -> None:
    layout, order = layout_of("stories", "letter", 6)
    probe = layout.render(order, 10, printable=False)
    with pytest.raises(ValueError, match="lay it out in full"):
        probe.document()
