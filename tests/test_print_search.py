"""The page-cap search lays out few candidates and prints what the slow way would print.

``render_print`` lays candidates out and prints one; a model of characters per page picks
which to try (``print_search``).
Here the PDF is held to the bytes WeasyPrint's own ``HTML.render().write_pdf()`` gives for
the answer, and the answer to the definition: the fewest left out that fit the cap (one
fewer does not), then the most whole paragraphs of the next story that still fit.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from digest.config import PrintProfile
from digest.models import Edition, ItemKind
from digest.render import print as printing
from digest.render.print_body import printed_item
from digest.render.print_search import Estimate, search
from digest.render.templates import templates_dir
from tests.golden_edition import golden_settings
from tests.test_print_inside import INSIDE_NOTE, make_edition


def plain(layout: printing._Layout, order: list[printing.Slot], n: int, partial=None) -> Any:
    """A candidate laid out by ``HTML.render``, as before the search was made faster."""
    return layout.weasyprint.HTML(
        string=layout.html_for(order, n, partial),  # the HTML the search lays out
        base_url=layout.base_url,
        url_fetcher=layout.fetcher,
    ).render(stylesheets=layout.stylesheets, font_config=layout.fonts)


@pytest.fixture(scope="module")
def edition() -> Edition:
    return make_edition()


@pytest.mark.parametrize("cap", [3, 6, 10])
def test_the_pdf_is_the_one_the_definition_gives(edition: Edition, cap: int) -> None:
    settings = golden_settings()
    profile = PrintProfile(name=f"cap{cap}", page_cap=cap, inside_note=INSIDE_NOTE)
    result = printing.render_print(edition, settings, profile)
    whole = printing.print_view(edition)
    layout = printing._Layout(whole, settings, profile)
    order = printing.drop_order(whole)
    n = result.left_out
    assert n > 0, "the test edition should be longer than the cap"
    assert len(plain(layout, order, n - 1).pages) > cap  # one fewer left out is too long
    slot = order[n - 1]
    item = whole.sections[slot.section].items[slot.index]
    assert not slot.event and item.kind == ItemKind.ARTICLE
    # The most paragraphs of the next story that fit, by bisection: none fit trivially,
    # all of them is the layout just found too long.
    lo, hi = 0, len(printed_item("", item, layout.blocks_of(slot)).blocks)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if len(plain(layout, order, n - 1, (slot, mid)).pages) <= cap:
            lo = mid
        else:
            hi = mid
    expected = plain(layout, order, n - 1, (slot, lo)) if lo else plain(layout, order, n)
    assert len(expected.pages) <= cap
    assert result.pages == len(expected.pages)
    assert result.pdf == expected.write_pdf()


def test_the_stylesheet_is_parsed_once_for_each_text_of_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = printing._stylesheets("letter", None)
    assert printing._stylesheets("letter", None) is first
    assert printing._stylesheets("a4", None) is not first
    css = (templates_dir() / printing.STYLESHEET).read_text(encoding="utf-8")
    # Parsed without a font configuration: right only while print.css loads no fonts.
    assert "@font-face" not in css and "@import" not in css
    shutil.copytree(templates_dir(), tmp_path / "templates")
    edited = tmp_path / "templates" / printing.STYLESHEET
    edited.write_text(css + "\nh1 { font-size: 30pt; }\n", encoding="utf-8")
    monkeypatch.setattr(printing, "templates_dir", lambda: tmp_path / "templates")
    assert printing._stylesheets("letter", None) is not first


def steps(
    boundary: int, top: int, off: int = 0, slope: float = 1.0
) -> tuple[int | None, list[int]]:
    """The search over a fake layout where ``n`` left out takes ``5.5 + (boundary - n) / 3``
    pages, with a model ``off`` items wrong and ``slope`` times as steep."""
    probes: list[int] = []

    def lay_out(n: int, printable: bool) -> int:
        probes.append(n)
        return n

    def measure(n: int) -> tuple[int, float]:
        used = 5.5 + (boundary - n) / 3
        return math.ceil(used), used

    estimate = Estimate(lambda n: 5.5 + (boundary + off - n) * slope / 3, 0.0, 1.0)
    found = search(lay_out, measure, estimate, 5, (-1, top + 1, None))
    return (None if found is None else found.fit), probes


@pytest.mark.parametrize("boundary", [-9, 1, 7, 40, 150])
def test_a_good_guess_lays_out_the_two_sides_of_the_boundary_only(boundary: int) -> None:
    fit, probes = steps(boundary, 200)
    expected = max(0, boundary + 2)  # the fewest n with 5.5 + (boundary - n) / 3 <= 5
    assert fit == expected
    assert sorted(probes) == ([0] if expected == 0 else [expected - 1, expected])


@pytest.mark.parametrize(
    ("off", "slope"), [(-60, 1.0), (-2, 1.0), (25, 1.0), (0, 0.2), (10, 4.0), (-30, 0.05)]
)
def test_a_poor_guess_still_finds_the_boundary_in_few_layouts(off: int, slope: float) -> None:
    fit, probes = steps(90, 200, off, slope)
    assert fit == 92
    assert len(probes) <= 16 and len(set(probes)) == len(probes)


def test_an_edition_that_never_fits_is_none() -> None:
    fit, probes = steps(500, 200)
    assert fit is None and 200 in probes
