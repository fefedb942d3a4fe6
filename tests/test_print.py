"""The print edition: page caps, what is left out, every page's furniture, black and white.

The PDFs are read back with poppler-utils (pdfinfo, pdftotext, pdftoppm), as a
prisoner-support contact's printer and a mailroom's photocopier would see them.
Renders are slow (about 2 s for a 200-item edition), so each profile renders once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import weasyprint

from digest.config import PrintProfile, Settings
from digest.errors import RenderError
from digest.models import Edition, Event, Item, ItemKind, Section
from digest.render import print as print_module
from digest.render.print import PrintEdition, drop_order, render_print
from tests.golden_edition import golden_edition, golden_settings

POPPLER = ("pdfinfo", "pdftotext", "pdftoppm")
MISSING = [tool for tool in POPPLER if shutil.which(tool) is None]
needs_poppler = pytest.mark.skipif(
    bool(MISSING),
    reason=f"poppler-utils not installed ({', '.join(MISSING)} missing; `make test` installs it)",
)

ZONE = ZoneInfo("America/New_York")
CUTOFF = datetime(2026, 11, 26, 7, 0, tzinfo=ZONE)
SITE = "https://harborcitydpc.example.org"
ADDRESS = "PO Box 4417, Harbor City, NY 10027"
EDITOR_LINK = f"{SITE}/volunteer/shifts-for-december/"
PINNED = ("Pinned: how to write to us from inside", "Pinned: our new mailing address")

SENTENCES = (
    "The county commission voted four to three to extend the jail's phone contract.",
    "Families say the new video-visit fees have doubled since the summer.",
    "Volunteers packed three hundred books for the state women's facility this month.",
    "A hearing on the parole board's backlog is set for the second week of December.",
    "Advocates asked the department to publish its solitary confinement numbers monthly.",
    "The reentry fair drew more than two hundred people and forty service providers.",
    "Several facilities now scan all incoming mail and hand out photocopies instead.",
    "The bill would cap commissary markups and end fees on deposits to trust accounts.",
    "Letters from inside describe long lockdowns and cancelled programs since October.",
    "Legal aid clinics will run every Tuesday evening at the library's east branch.",
)

SECTIONS = (
    ("news", "News"),
    ("stories", "Stories"),
    ("campaigns", "Campaigns"),
    ("letters", "Letters from inside"),
    ("resources", "Resources"),
    ("notes", "Notes"),
)


def _text(n: int, sentences: int) -> str:
    return " ".join(SENTENCES[(n + i) % len(SENTENCES)] for i in range(sentences))


def _item(n: int, key: str, *, pinned: bool = False, title: str = "") -> Item:
    when = CUTOFF - timedelta(hours=1 + n * 0.75)
    note = key == "notes"
    summary = _text(n, 3 + n % 3)
    return Item(
        key=f"{key}-{n}",
        source=key,
        section=key,
        title=title or f"{key.capitalize()} {n}: {SENTENCES[n % len(SENTENCES)][:-1]}",
        url=None if note else f"https://news.example.com/2026/11/{key}/{n}-county-jail-phones",
        summary=summary,
        body_html=f"<p>{summary}</p>",
        published=when,
        first_seen=when,
        author="Staff",
        pinned=pinned,
        kind=ItemKind.NOTE if note else ItemKind.ARTICLE,
    )


def _event(n: int) -> Event:
    start = CUTOFF + timedelta(days=1 + n % 14, hours=(n * 5) % 10)
    return Event(
        key=f"event-{n}",
        source="events",
        title=f"Event {n}: letter-writing night and potluck",
        start=start,
        end=start + timedelta(hours=2),
        all_day=n % 7 == 0,
        location="Eastside Community Center, 212 Marsh Street, Harbor City",
        url=f"{SITE}/events/{n}/",
        description=_text(n, 2),
    )


def big_edition(count: int = 200) -> Edition:
    """``count`` items and events over six item sections and a calendar, two pinned notes."""
    events = tuple(_event(n) for n in range(count // 5))
    per_section: dict[str, list[Item]] = {key: [] for key, _ in SECTIONS}
    per_section["notes"] += [
        _item(0, "notes", pinned=True, title=PINNED[0]),
        _item(1, "notes", pinned=True, title=PINNED[1]),
    ]
    n = 2
    while sum(map(len, per_section.values())) + len(events) < count:
        key = SECTIONS[n % len(SECTIONS)][0]
        per_section[key].append(_item(n, key))
        n += 1
    sections = tuple(Section(key, title, items=tuple(per_section[key])) for key, title in SECTIONS)
    note = Item(
        key="editor",
        source="notes",
        section="news",
        title="From the desk: a busy December",
        url=None,
        summary="",
        body_html=f'<p>Thank you all. <a href="{EDITOR_LINK}">Sign up for a shift</a>.</p>',
        published=CUTOFF - timedelta(days=1),
        first_seen=CUTOFF - timedelta(days=1),
        kind=ItemKind.EDITOR_NOTE,
    )
    return Edition(
        id="2026-W48",
        subject="Harbor City: the week of 26 November 2026",
        preheader="A busy December",
        since=CUTOFF - timedelta(days=7),
        cutoff=CUTOFF,
        editor_note=note,
        sections=(*sections, Section("events", "Coming up", events=events)),
        archive_url="https://digest.harborcitydpc.example.org/archive/2026-W48",
    )


# --- reading PDFs back --------------------------------------------------------------------


def _run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def pdfinfo_pages(path: Path) -> int:
    match = re.search(r"^Pages:\s+(\d+)$", _run("pdfinfo", path), re.MULTILINE)
    assert match, "pdfinfo printed no page count"
    return int(match[1])


def page_text(path: Path, page: int) -> str:
    """One page's text, its whitespace collapsed (lines wrap where the layout chose)."""
    return " ".join(_run("pdftotext", "-f", page, "-l", page, path, "-").split())


def unwrapped(text: str) -> str:
    """Text without any whitespace: a URL broken across lines reads whole again."""
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class Raster:
    width: int
    height: int
    rgb: bytes


def read_ppm(path: Path) -> Raster:
    """A binary PPM (P6, 8 bits): header fields split by whitespace and # comments."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace() or data[pos : pos + 1] == b"#":
            if data[pos : pos + 1] == b"#":
                pos = data.index(b"\n", pos)
            pos += 1
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6" and fields[3] == b"255", f"not an 8-bit P6 file: {fields}"
    width, height = int(fields[1]), int(fields[2])
    rgb = data[pos + 1 : pos + 1 + width * height * 3]  # one whitespace byte ends the header
    assert len(rgb) == width * height * 3
    return Raster(width, height, rgb)


def rasterise(pdf: Path, out: Path) -> list[Raster]:
    _run("pdftoppm", "-r", "100", pdf, out / "page")
    return [read_ppm(p) for p in sorted(out.glob("page-*.ppm"), key=_page_number)]


def _page_number(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])


STREAK = 25  # pixels: a quarter of an inch at 100 dpi


@dataclass(frozen=True)
class Greys:
    """Grey pixels on one page, as shares of the page."""

    mid: float  # any pixel from 64 to 191: mostly anti-aliased glyph edges
    areas: float  # mid-grey pixels whose whole 3x3 neighbourhood is mid-grey: a grey fill
    lone: float  # mid-grey pixels with no near-black pixel beside them: grey type
    streaks: int  # lone grey pixels starting a straight run of STREAK: a light rule


def greys(page: Raster) -> Greys:
    """Mask arithmetic on big integers (one byte per pixel): fast without numpy or PIL."""
    grey = page.rgb[0::3]
    n, row = len(grey), 8 * page.width
    full = (1 << 8 * n) - 1
    mid = _mask(grey, range(64, 192))
    dark = _mask(grey, range(64))
    across = mid & (mid << 8) & (mid >> 8)
    areas = across & (across << row) & (across >> row)
    near = dark | (dark << 8) | (dark >> 8)
    near |= (near << row) | (near >> row)
    lone = mid & ~near & full
    flat, upright = lone, lone
    for step in range(1, STREAK):
        flat &= lone << 8 * step
        upright &= lone << row * step
    return Greys(
        mid.bit_count() / n,
        areas.bit_count() / n,
        lone.bit_count() / n,
        flat.bit_count() + upright.bit_count(),
    )


def clean(found: Greys) -> bool:
    """Black type and black rules only: no grey fill, no grey type, no light rule."""
    return found.areas < 0.0005 and found.lone < 0.005 and found.streaks == 0


def _mask(grey: bytes, values: range) -> int:
    table = bytes(1 if v in values else 0 for v in range(256))
    return int.from_bytes(grey.translate(table), "big")


# --- fixtures -----------------------------------------------------------------------------


def settings() -> Settings:
    return golden_settings()


PROFILES = [
    PrintProfile(name=f"{paper}-{cap}", paper=paper, page_cap=cap)
    for cap in (2, 4, 6)
    for paper in ("letter", "a4")
]


@dataclass(frozen=True)
class Printed:
    profile: PrintProfile
    result: PrintEdition
    path: Path


@pytest.fixture(scope="module")
def edition() -> Edition:
    return big_edition(200)


@pytest.fixture(scope="module", params=PROFILES, ids=lambda p: p.name)
def printed(
    request: pytest.FixtureRequest, edition: Edition, tmp_path_factory: pytest.TempPathFactory
) -> Printed:
    profile: PrintProfile = request.param
    result = render_print(edition, settings(), profile)
    path = tmp_path_factory.mktemp(profile.name) / "print.pdf"
    path.write_bytes(result.pdf)
    return Printed(profile, result, path)


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Printed:
    profile = PrintProfile(name="default")
    result = render_print(golden_edition(), golden_settings(), profile)
    path = tmp_path_factory.mktemp("golden") / "print.pdf"
    path.write_bytes(result.pdf)
    return Printed(profile, result, path)


# --- the tests ----------------------------------------------------------------------------


def test_the_edition_is_realistic(edition: Edition) -> None:
    assert edition.item_count == 201  # 200 items and events, and the editor's note
    assert len(edition.sections) == 7
    assert all(len(item.summary) > 150 for s in edition.sections for item in s.items)


@needs_poppler
def test_a_long_edition_is_cut_to_the_page_cap(printed: Printed) -> None:
    pages = pdfinfo_pages(printed.path)
    assert pages == printed.result.pages <= printed.profile.page_cap
    assert printed.result.left_out > 0
    size = _run("pdfinfo", printed.path)
    assert ("612 x 792" in size) == (printed.profile.paper == "letter")
    assert ("595.276 x 841.89" in size or "595 x 842" in size) == (printed.profile.paper == "a4")

    last = page_text(printed.path, pages)
    assert re.search(rf"\b{printed.result.left_out} items were left out\b", last)
    assert "Write to us at the return address and we will post you any of them" in last
    for page in range(1, pages):
        assert "items were left out" not in page_text(printed.path, page)


@needs_poppler
def test_every_page_has_the_return_address_date_and_page_number(printed: Printed) -> None:
    pages = printed.result.pages
    for page in range(1, pages + 1):
        text = page_text(printed.path, page)
        assert "Return address: Harbor City Drug Policy Coalition" in text, page
        assert ADDRESS in text, page
        assert "Thursday 26 November 2026" in text, page
        assert f"Page {page} of {pages}" in text, page


@needs_poppler
def test_pages_are_black_and_white_without_grey_areas(printed: Printed, tmp_path: Path) -> None:
    rasters = rasterise(printed.path, tmp_path)
    assert len(rasters) == printed.result.pages
    for number, page in enumerate(rasters, 1):
        assert page.rgb[0::3] == page.rgb[1::3] == page.rgb[2::3], f"colour on page {number}"
        found = greys(page)
        assert clean(found), (number, found)
        # Anti-aliased glyph edges alone make 2.5-4% of a full page of 12 pt type mid-grey
        # at 100 dpi, so this share bounds density; where the grey lies is checked above.
        assert found.mid < 0.05, (number, found)


@needs_poppler
@pytest.mark.parametrize(
    ("css", "passes"),
    [
        ("p { color: #000; } div { border-top: 2pt solid #000; width: 5in; }", True),
        ("div { background: #888; height: 1in; width: 3in; }", False),
        ("div { border-top: 0.75pt solid #999; width: 5in; }", False),
        ("p { color: #808080; }", False),
    ],
    ids=["black-type-and-rule", "grey-fill", "light-rule", "grey-type"],
)
def test_the_grey_check_finds_what_photocopiers_lose(
    css: str, passes: bool, tmp_path: Path
) -> None:
    """The check above passes black type and rules and catches greys, not only clean pages."""
    html = f"<style>@page {{ size: letter }} p {{ font-size: 12pt }} {css}</style><div></div>"
    pdf = tmp_path / "sample.pdf"
    weasyprint.HTML(string=html + f"<p>{_text(0, 30)}</p>").write_pdf(pdf)
    (page,) = rasterise(pdf, tmp_path)
    assert clean(greys(page)) is passes, greys(page)


@needs_poppler
def test_editor_note_and_pinned_notes_survive_the_cap(printed: Printed) -> None:
    text = " ".join(page_text(printed.path, page) for page in range(1, printed.result.pages + 1))
    assert "From the desk: a busy December" in text
    for title in PINNED:
        assert title in text
    assert f"Sign up for a shift ({EDITOR_LINK})" in text or EDITOR_LINK in unwrapped(text)


@needs_poppler
def test_addresses_are_printed_as_references(golden: Printed) -> None:
    text = " ".join(page_text(golden.path, page) for page in range(1, golden.result.pages + 1))
    flat = unwrapped(text)
    edition = golden_edition()
    for section in edition.sections:
        for item in section.items:
            assert item.url and item.url in flat
            assert item.title in text
        for event in section.events:
            assert event.url is None or event.url in flat
            assert event.location in text
    assert "https://harborcitydpc.example.org/volunteer/" in flat
    assert "When: Tuesday 1 December, 6:30 pm to 8:30 pm" in text
    assert "Saturday 5 December, all day" in text
    assert "“quotes” & ampersands" in text  # escaped once, printed as typed


@needs_poppler
def test_a_small_edition_fits_without_leaving_anything_out(golden: Printed) -> None:
    assert golden.result.left_out == 0
    assert 1 <= golden.result.pages <= 2
    assert pdfinfo_pages(golden.path) == golden.result.pages
    last = page_text(golden.path, golden.result.pages)
    assert "left out" not in last


def test_the_same_edition_gives_the_same_bytes(golden: Printed) -> None:
    again = render_print(golden_edition(), golden_settings(), golden.profile)
    assert again.pdf == golden.result.pdf


@needs_poppler
def test_the_document_date_is_the_editions(golden: Printed) -> None:
    info = _run("pdfinfo", "-isodates", golden.path)
    assert re.search(r"^CreationDate:\s+2026-11-26T06:59:59-05", info, re.MULTILINE), info
    assert "Harbor City Drug Policy Coalition" in info  # title and author


def test_items_are_left_out_oldest_news_first_then_other_items_then_latest_events() -> None:
    edition = big_edition(60)
    order = drop_order(edition)
    sections = edition.sections
    rows = [
        (sections[s.section].key, sections[s.section].events[s.index])
        if s.event
        else (sections[s.section].key, sections[s.section].items[s.index])
        for s in order
    ]
    keys = [key for key, _ in rows]
    news = keys.count("news")
    events = keys.count("events")
    assert keys[:news] == ["news"] * news
    assert "news" not in keys[news:] and "events" not in keys[: len(keys) - events]
    items = [row for _, row in rows if isinstance(row, Item)]
    published = [item.published for item in items]
    assert published[:news] == sorted(published[:news])
    assert published[news:] == sorted(published[news:])
    starts = [row.start for _, row in rows if isinstance(row, Event)]
    assert starts == sorted(starts, reverse=True)
    assert all(not getattr(row, "pinned", False) for _, row in rows)
    assert len(order) == 60 - len(PINNED)  # every item and event except the pinned notes


def test_an_edition_whose_protected_notes_overflow_the_cap_is_refused() -> None:
    edition = big_edition(20)
    assert edition.editor_note is not None
    long_note = replace(edition.editor_note, body_html=f"<p>{_text(0, 10)}</p>" * 12)
    with pytest.raises(RenderError, match=r"editor's note and pinned notes alone take \d+ pages"):
        render_print(
            replace(edition, editor_note=long_note),
            settings(),
            PrintProfile(name="tiny", page_cap=1),
        )


def test_nothing_is_fetched_from_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the print renderer opened a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    edition = golden_edition()
    assert edition.editor_note is not None
    note = replace(
        edition.editor_note,
        body_html='<p>Hi <img src="https://example.com/tracker.png"></p>'
        '<p style="background: url(https://example.com/bg.png)">there</p>',
    )
    result = render_print(
        replace(edition, editor_note=note), golden_settings(), PrintProfile(name="default")
    )
    assert result.pdf.startswith(b"%PDF-") and result.left_out == 0
    layout = print_module._Layout(edition, golden_settings(), PrintProfile(name="default"))
    with pytest.raises(ValueError, match="disallowed protocol"):
        layout.fetcher.fetch("https://example.com/font.woff2")
