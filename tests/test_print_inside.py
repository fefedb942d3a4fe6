"""The print edition as a reader inside gets it: whole articles, its own selection to fill
the page cap, nothing that needs the internet, and a first page that says what is where.

Stories come from a real RSS body with ``content:encoded`` through the feed parser and
the sanitiser, as collect stores them; the PDFs are read back with poppler-utils.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.collect.calendars import parse_calendar
from digest.collect.feeds import parse_feed
from digest.collect.notes import Note, note_item
from digest.collect.sanitize import clean_html
from digest.config import PrintProfile, Settings
from digest.models import Edition, Event, Item, Section
from digest.render import render_email
from digest.render.print import ARTICLE_CHARS, PrintEdition, render_print
from digest.render.print_body import print_blocks
from tests.golden_edition import golden_settings
from tests.test_print import _run, clean, greys, needs_poppler, pdfinfo_pages, rasterise

ZONE = ZoneInfo("America/New_York")
CUTOFF = datetime(2026, 11, 26, 7, 0, tzinfo=ZONE)
ORG = "Harbor City Drug Policy Coalition"
ARCHIVE = "https://digest.harborcitydpc.example.org/archive/2026-W48"
EMAIL_CAP = 8  # the email's max_items_per_section for news
LONGEST = 5300  # characters: about a page and a half, the most one story takes
INSIDE_NOTE = (
    "**Write to us** at PO Box 4417, Harbor City, NY 10027. To stop this newsletter, "
    'write "stop" with your name, ID number and facility.\n\n'
    "We cannot give legal advice: write to your facility's law library for that."
)
ONLINE_LINE = "Join us on Zoom at the link on our calendar page"
WORDS = [
    "county",
    "commission",
    "phone",
    "contract",
    "families",
    "video",
    "visit",
    "fees",
    "volunteers",
    "books",
    "parole",
    "board",
    "hearing",
    "backlog",
    "solitary",
    "numbers",
    "reentry",
    "fair",
    "providers",
    "mail",
    "scans",
    "commissary",
    "markups",
    "deposits",
    "lockdowns",
    "programs",
    "legal",
    "clinics",
    "library",
    "evenings",
]


def paragraph(article: int, n: int) -> str:
    """A distinct paragraph of about 260 characters, ending with a full stop."""
    picked = [WORDS[(article * 7 + n * 3 + i) % len(WORDS)] for i in range(36)]
    return f"Story {article} paragraph {n} says " + " ".join(picked) + "."


def rss(count: int) -> bytes:
    entries = []
    for a in range(count):
        paragraphs = 24 if a % 9 == 4 else 3 + a % 5  # every ninth story is a long read
        body = "".join(f"<p>{paragraph(a, n)}</p>" for n in range(paragraphs))
        if a == 1:
            body = (
                '<p><img src="https://t.example/x.png" alt="Protesters outside City Hall"></p>'
                '<p><img src="https://t.example/spacer.gif" alt="spacer.gif"></p>' + body
            )
        when = CUTOFF - timedelta(hours=2 + a * 3)
        entries.append(
            f"<item><title>Story {a}: what the county decided</title>"
            f"<link>https://news.example.com/2026/11/story-{a}</link>"
            f"<guid>story-{a}</guid>"
            f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S %z')}</pubDate>"
            f"<description>Short summary {a}.</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>News</title><link>https://news.example.com/</link>"
        + "".join(entries)
        + "</channel></rss>"
    ).encode()


def paragraphs_of(item: Item) -> list[str]:
    return [m for m in re.findall(r"Story \d+ paragraph \d+ says [a-z ]+\.", item.body_html)]


def make_edition(stories: int = 30) -> Edition:
    items = parse_feed(
        rss(stories),
        source="news",
        section="news",
        url="https://news.example.com/feed",
        now=CUTOFF,
        summary_chars=300,
    ).items
    items.sort(key=lambda i: i.published, reverse=True)
    note = note_item(
        "editor",
        Note(
            title="A week of small wins",
            body=f"Thank you all for writing.\n\n[online] {ONLINE_LINE}.\n\nTake care.",
            section="news",
            pinned=False,
            editor_note=True,
            published=CUTOFF - timedelta(days=1),
            author="",
        ),
        now=CUTOFF,
        summary_chars=300,
    )
    events = tuple(
        Event(
            key=f"e{n}",
            source="events",
            title=f"Letter-writing night {n}",
            start=CUTOFF + timedelta(days=1 + n),
            end=None,
            all_day=False,
            location="Eastside Community Center, 212 Marsh Street",
            url=f"https://harborcitydpc.example.org/events/{n}/",
            description="Bring stamps; we bring paper.",
        )
        for n in range(2)
    )
    return Edition(
        id="2026-W48",
        subject="The week",
        preheader="",
        since=CUTOFF - timedelta(days=7),
        cutoff=CUTOFF,
        editor_note=note,
        sections=(
            Section(
                "news",
                "News",
                items=tuple(items[:EMAIL_CAP]),
                omitted=len(items) - EMAIL_CAP,
                more_url="https://harborcitydpc.example.org/news/",
                more_items=tuple(items[EMAIL_CAP:]),
            ),
            Section("events", "Coming up", events=events[:1], omitted=1, more_events=events[1:]),
        ),
        archive_url=ARCHIVE,
    )


def settings() -> Settings:
    return golden_settings()


@dataclass(frozen=True)
class Printed:
    cap: int
    result: PrintEdition
    path: Path
    pages: list[str]  # each page's text, as pdftotext lays it out

    @property
    def body(self) -> str:
        """The pages' text without the running head and foot, whitespace collapsed."""
        return " ".join(" ".join(_without_furniture(page).split()) for page in self.pages)


def _without_furniture(page: str) -> str:
    lines = page.splitlines()
    kept = [
        line
        for line in lines
        if not re.fullmatch(
            r"\s*Harbor City Drug Policy Coalition\s+Thursday 26 November 2026\s*", line
        )
        and "Return address:" not in line
        and not re.fullmatch(r"\s*PO Box 4417, Harbor City, NY 10027\s*", line)
        and not re.search(r"Page \d+ of \d+\s*$", line)
    ]
    return "\n".join(kept)


def printed_text(pdf: Path, pages: int) -> str:
    texts = [_run("pdftotext", "-layout", "-f", n, "-l", n, pdf, "-") for n in range(1, pages + 1)]
    return " ".join(" ".join(_without_furniture(page).split()) for page in texts)


@pytest.fixture(scope="module")
def edition() -> Edition:
    return make_edition()


@pytest.fixture(scope="module", params=[2, 6], ids=lambda cap: f"cap-{cap}")
def printed(
    request: pytest.FixtureRequest, edition: Edition, tmp_path_factory: pytest.TempPathFactory
) -> Printed:
    cap: int = request.param
    profile = PrintProfile(name=f"cap{cap}", page_cap=cap, inside_note=INSIDE_NOTE)
    result = render_print(edition, settings(), profile)
    path = tmp_path_factory.mktemp(f"cap{cap}") / "print.pdf"
    path.write_bytes(result.pdf)
    pages = [
        _run("pdftotext", "-layout", "-f", n, "-l", n, path, "-")
        for n in range(1, pdfinfo_pages(path) + 1)
    ]
    return Printed(cap, result, path, pages)


TITLE = re.compile(r"Story \d+: what the county decided")


def segments(printed: Printed) -> dict[str, str]:
    """Each printed story's text, from its heading to the next story's (after the contents)."""
    articles = printed.body.split("From the editor", 1)[1].split("Not printed here", 1)[0]
    starts = [m.start() for m in TITLE.finditer(articles)] + [len(articles)]
    return {
        TITLE.match(articles, start)[0]: articles[start:end]  # type: ignore[index]
        for start, end in itertools.pairwise(starts)
    }


def stories_of(edition: Edition) -> dict[str, Item]:
    news = edition.sections[0]
    return {s.title: s for s in (*news.items, *news.more_items)}


@needs_poppler
def test_kept_articles_print_every_paragraph_whole(edition: Edition, printed: Printed) -> None:
    assert "…" not in printed.body and "..." not in printed.body
    found = segments(printed)
    assert found, "no story printed"
    for title, text in found.items():
        paragraphs = paragraphs_of(stories_of(edition)[title])
        cut = re.search(r"Continued online; (\d+) more paragraphs?\.", text)
        shown = len(paragraphs) - (int(cut[1]) if cut else 0)
        assert shown >= 1
        for whole in paragraphs[:shown]:
            assert whole in text, (title, whole[:40])
        for gone in paragraphs[shown:]:
            assert gone not in text, (title, gone[:40])


@needs_poppler
def test_a_long_read_is_cut_between_paragraphs_and_says_so(
    edition: Edition, printed: Printed
) -> None:
    stories = stories_of(edition)
    long_reads = {
        t: x for t, x in segments(printed).items() if len(paragraphs_of(stories[t])) == 24
    }
    if not long_reads:
        assert printed.cap == 2, "the 6-page profile should hold a long read"
        return
    for title, text in long_reads.items():
        paragraphs = paragraphs_of(stories[title])
        shown = [t for t in paragraphs if t in text]
        assert shown == paragraphs[: len(shown)] and 1 <= len(shown) < len(paragraphs)
        assert sum(len(t) for t in shown) <= LONGEST
        after = text.split(shown[-1], 1)[1]
        more = len(paragraphs) - len(shown)
        assert after.lstrip().startswith(f"Continued online; {more} more paragraphs.")


@needs_poppler
def test_one_long_read_does_not_take_every_page(edition: Edition, tmp_path: Path) -> None:
    news = edition.sections[0]
    long_read = next(s for s in news.more_items if len(paragraphs_of(s)) == 24)
    alone = replace(edition, sections=(replace(news, items=(long_read,), more_items=()),))
    result = render_print(alone, settings(), PrintProfile(name="p", page_cap=6))
    pdf = tmp_path / "p.pdf"
    pdf.write_bytes(result.pdf)
    text = printed_text(pdf, result.pages)
    paragraphs = paragraphs_of(long_read)
    shown = [t for t in paragraphs if t in text]
    assert result.left_out == 0 and result.pages < 6  # there was room: it was cut anyway
    assert shown == paragraphs[: len(shown)] and sum(map(len, shown)) <= LONGEST
    more = len(paragraphs) - len(shown)
    assert f"Continued online; {more} more paragraphs. Write to us for the whole article." in text


@needs_poppler
def test_the_longer_cap_holds_more_and_fills_its_pages(
    edition: Edition, tmp_path_factory: pytest.TempPathFactory
) -> None:
    counts = {}
    for cap in (2, 6):
        profile = PrintProfile(name=f"c{cap}", page_cap=cap)
        result = render_print(edition, settings(), profile)
        path = tmp_path_factory.mktemp(f"fill{cap}") / "p.pdf"
        path.write_bytes(result.pdf)
        assert pdfinfo_pages(path) == result.pages <= cap
        text = _run("pdftotext", path, "-")
        counts[cap] = len(set(re.findall(r"Story \d+: what the county decided", text)))
        if cap == 6:
            assert result.pages >= 5
            assert counts[6] > EMAIL_CAP  # the email's per-section cap does not apply
    assert counts[6] > counts[2] >= 1


@needs_poppler
def test_no_page_but_the_last_is_more_than_a_third_blank(printed: Printed, tmp_path: Path) -> None:
    rasters = rasterise(printed.path, tmp_path)
    for number, page in enumerate(rasters[:-1], 1):
        blank = blank_share(page.rgb[0::3], page.width, page.height, dpi=100)
        assert blank <= 1 / 3, f"page {number} of {len(rasters)} is {blank:.0%} blank"


def blank_share(grey: bytes, width: int, height: int, *, dpi: int) -> float:
    """How much of the page's text area, above the running foot, is empty at its end."""
    top, bottom = int(1.1 * dpi), height - int(1.1 * dpi)  # the page margins of print.css
    last_ink = top
    for y in range(top, bottom):
        if min(grey[y * width : (y + 1) * width]) < 128:
            last_ink = y
    return (bottom - last_ink) / (bottom - top)


def test_the_blankness_check_sees_a_half_empty_page() -> None:
    width, height, dpi = 100, 1100, 100
    rows = [bytes([0 if 150 < y < 500 else 255] * width) for y in range(height)]
    assert blank_share(b"".join(rows), width, height, dpi=dpi) > 0.5


@needs_poppler
def test_the_pages_stay_black_and_white(printed: Printed, tmp_path: Path) -> None:
    for number, page in enumerate(rasterise(printed.path, tmp_path), 1):
        assert clean(greys(page)), number


@needs_poppler
def test_nothing_in_print_needs_the_internet(edition: Edition, printed: Printed) -> None:
    text = " ".join(printed.pages)
    flat = re.sub(r"\s+", "", text)
    assert "Read it online" not in text
    assert "on our website" not in text
    assert ARCHIVE not in flat
    assert ONLINE_LINE not in text
    assert "Thank you all for writing." in text and "Take care." in text
    email = render_email(edition, settings())
    assert ONLINE_LINE in email.html and ONLINE_LINE in email.text  # the email keeps it
    assert "[online]" not in email.html and "[online]" not in email.text


@needs_poppler
def test_page_one_has_the_inside_note_and_true_page_numbers(printed: Printed) -> None:
    first = " ".join(printed.pages[0].split())
    assert "Write to us at PO Box 4417" in first
    assert "We cannot give legal advice" in first
    assert "In this issue" in first
    contents = first.split("In this issue", 1)[1].split("From the editor", 1)[0]
    entries = re.findall(r"(Story \d+: what the county decided)[ .]*?(\d+)\b", contents)
    entries += re.findall(r"Editor's note: (A week of small wins)[ .]*?(\d+)\b", contents)
    assert len(entries) >= (4 if printed.cap == 6 else 1)
    for heading, page in entries:
        shown = [
            n for n, text in enumerate(printed.pages, 1) if heading in _after_contents(text, n)
        ]
        assert shown and int(page) == shown[0], (heading, page, shown)


def _after_contents(page: str, number: int) -> str:
    """A page's text; page 1's after "In this issue", so a headline counts where it is."""
    flat = " ".join(page.split())
    return flat.split("From the editor", 1)[-1] if number == 1 else flat


@needs_poppler
def test_a_picture_is_its_alt_text_and_a_file_name_says_nothing(printed: Printed) -> None:
    if "Story 1: what the county decided" not in segments(printed):  # then it is listed
        assert "Story 1: what the county decided" in printed.body.split("Not printed here")[-1]
        assert printed.cap == 2
        return
    assert "(Picture: Protesters outside City Hall)" in printed.body
    assert "spacer.gif" not in printed.body


def test_a_summary_only_story_prints_its_summary_whole() -> None:
    summary = " ".join(paragraph(99, n) for n in range(3))  # 800 characters, no <p>
    (item,) = parse_feed(
        (
            "<rss version='2.0'><channel><title>t</title><item><title>Summary only</title>"
            f"<link>https://news.example.com/s</link><description>{summary}</description>"
            "</item></channel></rss>"
        ).encode(),
        source="news",
        section="news",
        url="https://news.example.com/feed",
        now=CUTOFF,
        summary_chars=300,
    ).items
    assert len(item.summary) <= 300  # the email's summary is cut ...
    blocks = print_blocks(item.body_html, keep_links=False)
    assert " ".join(b.html for b in blocks) == f"<p>{summary}</p>"  # ... print's is whole


def test_the_sanitiser_keeps_structure_and_alt_text_only() -> None:
    html = clean_html(
        "<h1>Big</h1><div><p>a <img src='https://t.example/p.png' alt='Two women at a rally'>"
        " b</p></div><img alt='IMG_2231.JPG' src='x'><img src='y'><h6>small</h6>"
        "<p class='online-only evil'>web</p><table><tr><td>1</td></tr></table>"
    )
    assert html == (
        '<h3>Big</h3><div><p>a <span class="picture">(Picture: Two women at a rally)</span>'
        ' b</p></div>  <h4>small</h4><p class="online-only">web</p>'
        "<table><tbody><tr><td>1</td></tr></tbody></table>"
    )
    assert "src" not in html


def test_wrappers_and_double_breaks_become_paragraphs() -> None:
    blocks = print_blocks(
        clean_html("Lead text<div><div><p>one</p>two<br><br>three<br>four</div></div><hr>end"),
        keep_links=False,
    )
    assert [b.html for b in blocks] == [
        "<p>Lead text</p>",
        "<p>one</p>",
        "<p>two</p>",
        "<p>three<br>four</p>",
        "<p>end</p>",
    ]


def test_a_story_keeps_link_words_and_a_note_keeps_the_address() -> None:
    body = clean_html('<p>See <a href="https://x.example/a">the ruling</a> today.</p>')
    (story,) = print_blocks(body, keep_links=False)
    (note,) = print_blocks(body, keep_links=True)
    assert story.html == "<p>See the ruling today.</p>"
    assert 'href="https://x.example/a"' in note.html


def test_the_editors_note_is_never_cut(edition: Edition, tmp_path: Path) -> None:
    assert edition.editor_note is not None
    paragraphs = [paragraph(50, n) for n in range(24)]  # longer than a story may be
    assert sum(map(len, paragraphs)) > ARTICLE_CHARS
    long_note = replace(edition.editor_note, body_html="".join(f"<p>{t}</p>" for t in paragraphs))
    result = render_print(
        replace(edition, editor_note=long_note), settings(), PrintProfile(name="p", page_cap=6)
    )
    pdf = tmp_path / "p.pdf"
    pdf.write_bytes(result.pdf)
    text = printed_text(pdf, result.pages)
    assert result.pages <= 6
    assert [t for t in paragraphs if t not in text] == []


@needs_poppler
def test_an_events_whole_description_is_printed_and_the_email_keeps_it_short(
    edition: Edition, tmp_path: Path
) -> None:
    first = " ".join(paragraph(70, n) for n in range(2))
    second = paragraph(71, 0)
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
        "UID:court-watch@example.org\r\nDTSTAMP:20261120T120000Z\r\n"
        "DTSTART:20261201T143000Z\r\nDTEND:20261201T160000Z\r\nSUMMARY:Court watch\r\n"
        f"DESCRIPTION:{first}\\n\\n{second}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (event,) = parse_calendar(
        ics.encode(),
        source="events",
        start=CUTOFF,
        end=CUTOFF + timedelta(days=30),
        zone=ZONE,
        description_chars=200,
    ).events
    assert len(event.description) <= 200 and event.description.endswith("…")
    assert event.description_full == f"{first}\n\n{second}"
    news = edition.sections[0]
    small = replace(
        edition,
        sections=(
            replace(news, items=news.items[:1], more_items=()),
            Section("events", "Coming up", events=(event,)),
        ),
    )
    result = render_print(small, settings(), PrintProfile(name="p", page_cap=6))
    pdf = tmp_path / "p.pdf"
    pdf.write_bytes(result.pdf)
    text = printed_text(pdf, result.pages)
    assert first in text and second in text and "…" not in text
    email = render_email(small, settings())
    assert (
        event.description in email.text.replace("\n", " ") or event.description[:60] in email.html
    )
    assert second not in email.html
