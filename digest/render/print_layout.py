"""One candidate of the page-cap search, laid out by WeasyPrint's own ``HTML.render``.

Only WeasyPrint's public API is used, so an upgrade of it changes nothing here. (A layout
that stopped at the page cap and skipped the running head and foot of the candidates not
printed was about a fifth faster, but it needed a copy of WeasyPrint's internals, which
change between its major versions.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weasyprint import CSS, HTML
from weasyprint.document import Document
from weasyprint.text.fonts import FontConfiguration


@dataclass(frozen=True, slots=True)
class Paginated:
    """A document laid out into pages, ready to print."""

    rendering: Document

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
        return self.rendering


def paginate(html: HTML, stylesheets: list[CSS], font_config: FontConfiguration) -> Paginated:
    """``html`` laid out into pages, as ``html.render(stylesheets=..., font_config=...)``."""
    return Paginated(html.render(stylesheets=stylesheets, font_config=font_config))
