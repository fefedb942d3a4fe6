"""WeasyPrint's layout in two steps: the pages first, then what only a printed document needs.

A page-cap search lays out several candidates and prints one. ``HTML.render`` does the
whole of ``Document._render`` for each: the cascade, the boxes, the pagination, and then
the running head and foot (margin boxes), backgrounds, bookmarks and each page's links.
Here ``paginate`` stops after the pagination (enough to count the pages and see how full
the last one is) and ``Paginated.document`` does the rest only for the candidate that is
printed. The steps are WeasyPrint's own, in the order ``Document._render`` and
``layout.layout_document`` take them (weasyprint 70; those two functions are copied here
split in two, WeasyPrint's BSD licence); tests/test_print_layout.py holds the PDF to the
bytes ``HTML.render().write_pdf()`` gives for the same document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from weasyprint import CSS, DEFAULT_OPTIONS, HTML
from weasyprint.css.counters import CounterStyle
from weasyprint.document import Document, Page
from weasyprint.formatting_structure.build import build_formatting_structure
from weasyprint.html import get_html_metadata
from weasyprint.layout import initialize_page_maker, layout_fixed_boxes
from weasyprint.layout.background import layout_backgrounds
from weasyprint.layout.page import make_all_pages, make_margin_boxes
from weasyprint.pdf.metadata import DocumentMetadata
from weasyprint.text.fonts import FontConfiguration

MAX_LOOPS = 8  # layout_document's: page-based counters may need several passes


@dataclass(slots=True)
class Paginated:
    """A document laid out into pages, without its margin boxes yet."""

    html: HTML
    context: Any  # weasyprint.layout.LayoutContext
    pages: list[Any]  # page boxes
    options: dict[str, Any]
    color_profiles: dict[str, Any]
    whole: bool = True  # False: stopped past ``most`` pages, at least ``count`` more to come

    @property
    def count(self) -> int:
        return len(self.pages)

    def last_fill(self) -> float:
        """How much of the last page's content area the flow takes, 0 to 1."""
        page = self.pages[-1]
        root = page.children[0]
        used = root.position_y + root.margin_height() - page.content_box_y()
        return max(0.0, min(1.0, used / page.height)) if page.height else 1.0

    def document(self) -> Document:
        """The printable document (its margin boxes laid out): do it once."""
        if not self.whole:
            raise ValueError("a layout stopped past its page limit cannot be printed")
        font_config = self.context.font_config
        rendering = Document(
            [Page(box) for box in _finish(self.html, self.pages, self.context)],
            DocumentMetadata(**get_html_metadata(self.html)),
            self.html.url_fetcher,
            font_config,
            self.color_profiles,
            self.options["output_intent"],
        )
        rendering._html = self.html
        return rendering


def paginate(
    html: HTML, stylesheets: list[CSS], font_config: FontConfiguration, most: int | None = None
) -> Paginated:
    """``html`` laid out into pages, as ``html.render(stylesheets=..., font_config=...)``
    lays it out, without the margin boxes; with ``most``, the layout stops once it is
    known to take more pages than that (``whole`` is False then)."""
    options = DEFAULT_OPTIONS.copy()
    options["stylesheets"] = stylesheets
    counter_style = CounterStyle()
    color_profiles: dict[str, Any] = {}
    context = Document._build_layout_context(
        html, font_config, counter_style, color_profiles, options
    )
    root_box = build_formatting_structure(
        html.etree_element,
        context.style_for,
        context.get_image_from_uri,
        html.base_url,
        context.target_collector,
        counter_style,
        context.footnotes,
    )
    pages, whole = _pages(html, root_box, context, most)
    return Paginated(html, context, pages, options, color_profiles, whole)


def _pages(html: HTML, root_box: Any, context: Any, most: int | None) -> tuple[list[Any], bool]:
    """The first half of ``layout_document``: paginate until page-based counters settle.

    The first pass lays out the contents' page numbers (``target-counter``) empty, as they
    are not known yet; later passes only fill them in. So a first pass already past
    ``most`` pages is a document past ``most`` pages: stop there (False).
    """
    initialize_page_maker(context, root_box)
    pages: list[Any] = []
    original_footnotes: list[Any] = []
    actual_total_pages = 0
    for loop in range(MAX_LOOPS):
        if loop > 0:
            context.footnotes = original_footnotes.copy()
        initial_total_pages = actual_total_pages
        if loop == 0:
            original_footnotes = context.footnotes.copy()
            made: list[Any] = []
            for page in make_all_pages(context, root_box, html, pages):
                made.append(page)
                if most is not None and len(made) > most:
                    return made, False
            pages = made
        else:
            pages = list(make_all_pages(context, root_box, html, pages))
        actual_total_pages = len(pages)
        reloop_content = False
        reloop_pages = False
        for page_data in context.page_maker:
            _, _, _, page_state, remake_state = page_data
            page_state[1]["pages"] = [actual_total_pages]
            if remake_state["content_changed"]:
                reloop_content = True
            if remake_state["pages_wanted"]:
                reloop_pages = initial_total_pages != actual_total_pages
        if not reloop_content and not reloop_pages:
            break
    return pages, True


def _finish(html: HTML, pages: list[Any], context: Any) -> Iterator[Any]:
    """The second half of ``layout_document``: string-sets, bookmarks and margin boxes."""
    _labels_and_string_sets(pages, context)
    for i, page in enumerate(pages):
        root, footnote_area, note_area = page.children
        root_children = []
        root_children.extend(layout_fixed_boxes(context, pages[:i], page))
        root_children.extend(root.children)
        root_children.extend(layout_fixed_boxes(context, pages[i + 1 :], page))
        root.children = root_children
        context.current_page = i + 1
        state = context.page_maker[context.current_page][3]
        children = [root]
        if footnote_area.children:
            children.append(footnote_area)
        if note_area.children:
            children.append(note_area)
        children.extend(make_margin_boxes(context, page, state))
        page.children = tuple(children)
        layout_backgrounds(page, context.get_image_from_uri)
        yield page


def _labels_and_string_sets(pages: list[Any], context: Any) -> None:
    """Bookmark labels (one per original box) and string-sets, with page-based counters
    filled in now that the pagination is done."""
    seen: dict[str, list[Any]] = {"::before": [], "::after": [], "": []}
    lookups = context.target_collector.counter_lookup_items
    for i, page in enumerate(pages):
        page_counter_values = context.page_maker[i + 1][3][1]
        for child in page.descendants():
            if child.bookmark_label:
                tag = child.element_tag
                kind = next((k for k in ("::before", "::after") if tag.endswith(k)), "")
                if child.element in seen[kind]:
                    child.bookmark_label = ""
                else:
                    seen[kind].append(child.element)
            if child.missing_link:
                for (box, prop), item in lookups.items():
                    if child.missing_link != box or prop == "content":
                        continue
                    if prop == "bookmark-label" and not child.bookmark_label:
                        continue
                    item.parse_again(page_counter_values)
                    if prop == "bookmark-label":
                        child.bookmark_label = box.bookmark_label
            string_sets = child.string_set
            if string_sets and string_sets != "none":
                for string_name, text in string_sets:
                    context.string_set[string_name][i + 1].append(text)
