"""The print run's paper: address pages for window envelopes, and Avery 5160 labels.

Every measure is in inches from the sheet's top-left corner.

**Address page** (the edition's paper size, letter or A4, whose third also fits, folded
in three, into a standard #10 window envelope, whose window is 4.5in x 1.125in, 0.875in from the
envelope's left and 0.5in from its bottom; the folded sheet rests on the envelope's
bottom, so the window sits on the sheet's top third, 0.5in above the first fold):

- recipient window: left 0.875, width 4.5, height 1.125, bottom edge at H/3 - 0.5.
  On US Letter (H = 11): top 2.0417, bottom 3.1667. The address is set inside it with
  0.125 clear at the left and right, centred vertically, at least 3pt clear at the top
  and bottom and 1/8 when a size allows it, 12pt down to 11pt (never smaller), name and
  ID number first: six lines at most (a longer address is left out of the run).
- return window (a #10 double-window envelope's upper window): left 0.5, top 0.5,
  3.25 x 1; the organisation's name and postal address, 11pt (the recipient's 11 to 12).
- fold marks at H/3 and 2H/3, 0.25 long, in both margins (0.25 to 0.5 from each edge).
- in the middle third, 0.5 below the first fold, 11pt: "Copy 12 of 57 · Green Haven CF
  (3 of 9) · Inside, 2026-W48: 6 pages follow".

**Labels**: Avery 5160 (and 8160, 5260, 18160) on US Letter: 3 columns x 10 rows of
2.625 x 1 labels, the first 0.5 from the top and 0.1875 from the left, 0.125 between
columns, no gap between rows. Text is kept 0.125 inside the left and right of each
label and 0.05 inside its top and bottom (0.08 when a size allows it), 11pt down to
8pt, wrapped and shrunk to fit: eight lines at most, so an address that fits the
window (six lines of 11pt) fits a label even when two of its lines wrap. Labels fill a
sheet row by row, left to right.

WeasyPrint lays out what every address page shares once, and each copy's own parts in
documents of at most ``PAGES_PER_DOCUMENT`` pages (labels: ``SHEETS_PER_DOCUMENT``
sheets), for the whole profile, never one per person: one 500-page document alone took
some 250 MB; in hundreds, memory stays flat however long the list (bench/print.py).
digest/render/assembly.py puts the pages together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import weasyprint
from weasyprint.urls import URLFetcher

from digest.errors import RenderError
from digest.render.fitting import Fit, Fitted, fit_lines
from digest.render.templates import html_env, templates_dir

PAGES_PER_DOCUMENT = 100
SHEETS_PER_DOCUMENT = 4
ADDRESS_TEMPLATE = "print/address.html.j2"
LABELS_TEMPLATE = "print/labels.html.j2"
STYLESHEET = "print/mailing.css"
LOCAL_SCHEMES = ("file", "data")
TRANSPARENT = "html { background: none; }"
POINTS = 72.0  # per inch

# -- the #10 window envelope -----------------------------------------------------------
WINDOW_LEFT = 0.875
WINDOW_WIDTH = 4.5
WINDOW_HEIGHT = 1.125
WINDOW_ABOVE_FOLD = 0.5
WINDOW_INSET_X = 0.125
WINDOW_INSET_Y = 3 / POINTS
WINDOW_ROOM = 0.125 * POINTS - 3  # wanted on top of the inset, when the size allows it
RETURN_LEFT = 0.5
RETURN_TOP = 0.5
RETURN_WIDTH = 3.25
RETURN_HEIGHT = 1.0
RETURN_INSET = 0.06
FOLD_MARK = (0.25, 0.5)  # from each side edge
COPY_BELOW_FOLD = 0.5
ADDRESS_SIZES = ((12.0, 1.15), (11.5, 1.15), (11.0, 1.15), (11.0, 1.05))
RETURN_SIZES = ((11.0, 1.15), (11.0, 1.05))

# -- Avery 5160 ------------------------------------------------------------------------
SHEET = (8.5, 11.0)
LABEL_WIDTH = 2.625
LABEL_HEIGHT = 1.0
LABELS_TOP = 0.5
LABELS_LEFT = 0.1875
LABEL_GAP_X = 0.125
COLUMNS = 3
ROWS = 10
PER_SHEET = COLUMNS * ROWS
LABEL_INSET_X = 0.125
LABEL_INSET_Y = 0.05
LABEL_ROOM = 0.03 * POINTS
LABEL_SIZES = (
    *((size, 1.15) for size in (11.0, 10.5, 10.0, 9.5, 9.0, 8.5, 8.0)),
    (8.0, 1.05),
    (8.0, 1.0),  # eight lines: DejaVu's descenders then just meet the next line's capitals
)


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle on the sheet, in inches from its top-left corner."""

    left: float
    top: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def inset(self, x: float, y: float) -> Box:
        return Box(self.left + x, self.top + y, self.width - 2 * x, self.height - 2 * y)

    def fit(self, sizes: tuple[tuple[float, float], ...], room: float = 0.0) -> Fit:
        """This box as a place for lines of text, in points."""
        return Fit(self.width * POINTS, self.height * POINTS, sizes, room)


def window(sheet_height: float) -> Box:
    """The #10 envelope's window on a sheet folded in three."""
    bottom = sheet_height / 3 - WINDOW_ABOVE_FOLD
    return Box(WINDOW_LEFT, bottom - WINDOW_HEIGHT, WINDOW_WIDTH, WINDOW_HEIGHT)


def window_text(sheet_height: float) -> Box:
    """Where the recipient's lines may go inside the window."""
    return window(sheet_height).inset(WINDOW_INSET_X, WINDOW_INSET_Y)


RETURN_WINDOW = Box(RETURN_LEFT, RETURN_TOP, RETURN_WIDTH, RETURN_HEIGHT)
RETURN_TEXT = RETURN_WINDOW.inset(RETURN_INSET, RETURN_INSET)


def label(k: int) -> Box:
    """Label ``k`` (from 0) of a sheet, row by row."""
    row, column = divmod(k % PER_SHEET, COLUMNS)
    left = LABELS_LEFT + column * (LABEL_WIDTH + LABEL_GAP_X)
    return Box(left, LABELS_TOP + row * LABEL_HEIGHT, LABEL_WIDTH, LABEL_HEIGHT)


def label_text(k: int) -> Box:
    return label(k).inset(LABEL_INSET_X, LABEL_INSET_Y)


def window_fit(sheet_height: float) -> Fit:
    """How the recipient's lines are fitted in the window: 12pt down to 11pt."""
    return window_text(sheet_height).fit(ADDRESS_SIZES, WINDOW_ROOM)


def label_fit() -> Fit:
    """How the recipient's lines are fitted on a label: 11pt down to 8pt."""
    return label_text(0).fit(LABEL_SIZES, LABEL_ROOM)


def fit_return(name: str, postal_address: str) -> Fitted:
    """The organisation's return address in the upper window (RenderError if too long)."""
    lines = [name, *return_lines(postal_address)]
    fitted = fit_lines(lines, RETURN_TEXT.fit(RETURN_SIZES))
    if fitted is None:
        raise RenderError(
            "organisation.name and postal_address do not fit an envelope's return window "
            f"({RETURN_WIDTH}in x {RETURN_HEIGHT}in at 11pt): shorten them in config.toml"
        )
    return fitted


def return_lines(postal_address: str) -> list[str]:
    """The postal address as envelope lines: its own lines, or, written on one line, the
    street part and then "City, ST ZIP" (the last two comma-separated parts)."""
    lines = [line.strip() for line in postal_address.splitlines() if line.strip()]
    if len(lines) == 1:
        parts = [part.strip() for part in lines[0].split(",")]
        if len(parts) >= 3:
            return [", ".join(parts[:-2]), ", ".join(parts[-2:])]
    return lines


@dataclass(frozen=True, slots=True)
class AddressPage:
    """One copy's address page: the window's lines and a line for the mailroom."""

    window: Fitted
    note: str


@dataclass(frozen=True, slots=True)
class AddressPages:
    """A profile's address pages: ``shared``, one PDF page of what every address page
    has (the return address, the fold marks), to be stamped on each; ``parts``, PDFs of
    at most ``PAGES_PER_DOCUMENT`` pages each with what is each copy's own."""

    shared: bytes
    parts: Iterator[bytes]


def address_pages(
    pages: Sequence[AddressPage], returned: Fitted, *, size: tuple[float, float], title: str
) -> AddressPages:
    """Every copy's address page, in order, on ``size`` (inches) sheets."""
    width, height = size
    third = height / 3
    context = {
        "returned": returned,
        "window": window_text(height),
        "return_box": RETURN_TEXT,
        "folds": (third, 2 * third),
        "marks": (FOLD_MARK[0], width - FOLD_MARK[1]),
        "mark_width": FOLD_MARK[1] - FOLD_MARK[0],
        "notes_box": Box(WINDOW_LEFT, third + COPY_BELOW_FOLD, width - 2 * WINDOW_LEFT, 1.5),
        "sheet": Box(0, 0, width, height),
    }

    def parts() -> Iterator[bytes]:
        for start in range(0, len(pages), PAGES_PER_DOCUMENT):
            part = pages[start : start + PAGES_PER_DOCUMENT]
            yield _render(
                ADDRESS_TEMPLATE,
                {**context, "shared": False, "pages": part},
                size,
                title,
                len(part),
            )

    # No background: it is drawn over each page, whose own content paints the white.
    shared = _render(
        ADDRESS_TEMPLATE, {**context, "shared": True, "pages": []}, size, title, 1, TRANSPARENT
    )
    return AddressPages(shared, parts())


def labels(fitted: Sequence[Fitted], *, title: str) -> Iterator[bytes]:
    """Avery 5160 sheets of the labels, in order, 30 a sheet: PDFs of at most
    ``SHEETS_PER_DOCUMENT`` sheets each."""
    sheets = [
        [(label_text(k), one) for k, one in enumerate(fitted[start : start + PER_SHEET])]
        for start in range(0, len(fitted), PER_SHEET)
    ]
    for start in range(0, len(sheets), SHEETS_PER_DOCUMENT):
        part = sheets[start : start + SHEETS_PER_DOCUMENT]
        context = {"sheets": part, "sheet": Box(0, 0, *SHEET)}
        yield _render(LABELS_TEMPLATE, context, SHEET, title, len(part))


def sheets_of_labels(count: int) -> int:
    return -(-count // PER_SHEET)


def _render(
    template: str,
    context: dict[str, Any],
    size: tuple[float, float],
    title: str,
    expected: int,
    css: str = "",
) -> bytes:
    html = html_env().get_template(template).render(title=title, **context)
    fetcher = URLFetcher(allowed_protocols=LOCAL_SCHEMES, timeout=1)
    stylesheets = [
        weasyprint.CSS(filename=str(templates_dir() / STYLESHEET), url_fetcher=fetcher),
        weasyprint.CSS(string=f"@page {{ size: {size[0]}in {size[1]}in; margin: 0; }} {css}"),
    ]
    document = weasyprint.HTML(
        string=html, base_url=str(templates_dir() / "print") + "/", url_fetcher=fetcher
    ).render(stylesheets=stylesheets)
    if len(document.pages) != expected:  # a sheet that spilled would shift every copy after it
        raise RenderError(
            f"{template}: laid out {len(document.pages)} pages for {expected} sheets: "
            "report this (an address page or label sheet overflowed)"
        )
    pdf: bytes = document.write_pdf()
    return pdf
