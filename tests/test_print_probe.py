"""Candidates the page-cap search expects to be too long are laid out as probes: without
their page-margin boxes (running head, return address, page numbers), which sit outside
the page's content area. A probe must break into the very pages a full layout does, and
the PDF must stay the one a full layout of the answer gives, even when a probe turned out
to be the answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from digest.config import PrintProfile
from digest.models import Edition
from digest.render import print as printing
from tests.golden_edition import golden_settings
from tests.test_print import big_edition
from tests.test_print_inside import INSIDE_NOTE, make_edition


def pages_of(laid: Any) -> list[list[tuple[str, tuple[float, ...]]]]:
    """Every page's anchors and where they stand: what is on which page, to the point."""
    return [
        sorted((name, tuple(round(v, 3) for v in at)) for name, at in page.anchors.items())
        for page in laid.rendering.pages
    ]


@pytest.mark.parametrize(("paper", "cap"), [("letter", 6), ("a4", 3), ("letter", 10)])
def test_a_probe_breaks_into_the_same_pages_as_a_full_layout(paper: str, cap: int) -> None:
    settings = golden_settings()
    profile = PrintProfile(name="p", paper=paper, page_cap=cap, inside_note=INSIDE_NOTE)
    whole = printing.print_view(make_edition())
    layout = printing._Layout(whole, settings, profile)
    order = printing.drop_order(whole)
    fit = printing.render_print(whole, settings, profile).left_out
    for n in (fit - 1, fit, fit + 2):
        full = layout.render(order, n)
        probe = layout.render(order, n, printable=False)
        assert not probe.printable and full.printable
        assert probe.count == full.count
        assert probe.last_fill() == full.last_fill()
        assert pages_of(probe) == pages_of(full)


@pytest.mark.parametrize(
    ("edition", "paper", "cap"),
    [(make_edition(), "letter", 6), (make_edition(), "a4", 4), (big_edition(60), "letter", 3)],
    ids=["stories-letter", "stories-a4", "notes-and-events"],
)
def test_a_probe_that_is_the_answer_is_printed_in_full(
    monkeypatch: pytest.MonkeyPatch, edition: Edition, paper: str, cap: int
) -> None:
    settings = golden_settings()
    profile = PrintProfile(name="p", paper=paper, page_cap=cap, inside_note=INSIDE_NOTE)
    expected = printing.render_print(edition, settings, profile)
    search = printing.search

    def every_candidate_a_probe(lay_out: Any, *args: Any) -> Any:
        return search(lambda n, printable: lay_out(n, False), *args)

    monkeypatch.setattr(printing, "search", every_candidate_a_probe)
    got = printing.render_print(edition, settings, profile)
    assert (got.pages, got.left_out) == (expected.pages, expected.left_out)
    assert got.pdf == expected.pdf


def test_a_probe_is_never_printed() -> None:
    settings = golden_settings()
    profile = PrintProfile(name="p", page_cap=6)
    whole = printing.print_view(make_edition())
    layout = printing._Layout(whole, settings, profile)
    probe = layout.render(printing.drop_order(whole), 10, printable=False)
    with pytest.raises(ValueError, match="lay it out in full"):
        probe.document()
