"""One candidate of the page-cap search, laid out by WeasyPrint's own ``HTML.render``.

Only WeasyPrint's public API is used, so an upgrade of it changes nothing here. (A layout
that stopped at the page cap and skipped the running head and foot of the candidates not
printed was about a fifth faster, but it needed a copy of WeasyPrint's internals, which
change between its major versions.)

A candidate the search expects to be too long is laid out as a probe: with one more
stylesheet that empties every page-margin box (the running head, the return address, "Page
x of y"). Margin boxes sit in the page's margins, which ``@page``'s ``margin`` sizes
whatever they hold, so the flow breaks into the same pages with the same content; only
what is printed around it is missing, and a probe is never printed (a probe that fits and
is the answer is laid out again in full). Their layout was about 60 ms of a 7-page
candidate's 460.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from weasyprint import CSS, HTML
from weasyprint.document import Document
from weasyprint.text.fonts import FontConfiguration

MARGIN_BOXES = (
    "top-left-corner",
    "top-left",
    "top-center",
    "top-right",
    "top-right-corner",
    "bottom-left-corner",
    "bottom-left",
    "bottom-center",
    "bottom-right",
    "bottom-right-corner",
    "left-top",
    "left-middle",
    "left-bottom",
    "right-top",
    "right-middle",
    "right-bottom",
)


@dataclass(frozen=True, slots=True)
class Paginated:
    """A document laid out into pages; ``printable`` False for a probe (no margin boxes)."""

    rendering: Document
    printable: bool = True
    selection: Any = None  # what was laid out, for the caller to lay it out again

    @property
    def count(self) -> int:
        return len(self.rendering.pages)

    def last_fill(self) -> float:
        """How much of the last page's content area the flow takes, 0 to 1."""
        page: Any = self.rendering.pages[-1]._page_box
        root = page.children[0]
        used = root.position_y + root.margin_height() - page.content_box_y()
        return max(0.0, min(1.0, used / page.height)) if page.height else 1.0

    def document(self) -> Document:
        if not self.printable:
            raise ValueError("a probe's layout has no running head or foot: lay it out in full")
        return self.rendering


@functools.cache
def probe_stylesheet() -> CSS:
    """Every page-margin box emptied (parsed once a process)."""
    rules = " ".join(f"@{name} {{ content: none !important; }}" for name in MARGIN_BOXES)
    return CSS(string=f"@page {{ {rules} }}")


def paginate(
    html: HTML,
    stylesheets: list[CSS],
    font_config: FontConfiguration,
    *,
    printable: bool = True,
    selection: Any = None,
) -> Paginated:
    """``html`` laid out into pages, as ``html.render(stylesheets=..., font_config=...)``;
    with ``printable`` False as a probe, its margin boxes empty."""
    sheets = stylesheets if printable else [*stylesheets, probe_stylesheet()]
    rendering = html.render(stylesheets=sheets, font_config=font_config)
    return Paginated(rendering, printable, selection)
