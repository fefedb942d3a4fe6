"""Prison e-messages: numbered parts within a service's caps, links in full, nothing lost."""

from __future__ import annotations

import dataclasses
import html
import itertools
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from digest.config import PrintProfile
from digest.errors import RenderError
from digest.models import Edition, Event, Item, ItemKind, Section
from digest.render.emessage import ascii_fold, emessage_parts
from tests.golden_edition import CUTOFF, ZONE, golden_edition, golden_settings

ORG = golden_settings().organisation
HEADER = re.compile(r"Part (\d+) of (\d+)\n\n")
MARKUP = re.compile(r"&amp;|&#|&[A-Za-z][A-Za-z0-9]*;|<[A-Za-z/!?]")

GOLDEN_TEXT = """\
Part 1 of 1

Harbor City Drug Policy Coalition
Weekly digest, Thursday 26 November 2026

FROM THE EDITOR
A week of small wins
Two more sites cleared the council. Sign up for a shift [1].

— The editor
Link [1]: https://harborcitydpc.example.org/volunteer/

NEWS
News story number 1: “quotes” & ampersands
harborcitydpc.example.org, 25 November 2026
A summary of about thirty words that tells the reader what happened, who
it affects and what they can do next — with a dash, an ellipsis… and
< angle brackets>.
Link: https://harborcitydpc.example.org/news/item-1/

News story number 2: “quotes” & ampersands
harborcitydpc.example.org, 24 November 2026
A summary of about thirty words that tells the reader what happened, who
it affects and what they can do next — with a dash, an ellipsis… and
< angle brackets>.
Link: https://harborcitydpc.example.org/news/item-2/

News story number 3: “quotes” & ampersands
harborcitydpc.example.org, 23 November 2026
A summary of about thirty words that tells the reader what happened, who
it affects and what they can do next — with a dash, an ellipsis… and
< angle brackets>.
Link: https://harborcitydpc.example.org/news/item-3/

2 more in News on our website: https://harborcitydpc.example.org/news/

STORIES
A Saturday shift at books-to-prisoners
harborcitydpc.example.org, 24 November 2026
Forty-one request letters, one long table and a lot of tape.
Link: https://harborcitydpc.example.org/stories/item-2/

COMING UP
Letter-writing night
When: Tuesday 1 December, 6:30 pm to 8:30 pm
Where: Eastside Community Center, 212 Marsh Street
Write to people in prison. No experience needed.
Link: https://harborcitydpc.example.org/events/letters/

Statewide day of action
When: Saturday 5 December, all day

Harbor City Drug Policy Coalition
PO Box 4417, Harbor City, NY 10027"""


# --- helpers -----------------------------------------------------------------------------------


def profile(
    chars: int = 13_000, lines: int | None = None, ascii_only: bool = False
) -> PrintProfile:
    return PrintProfile(
        name="test", emessage_chars=chars, emessage_lines=lines, ascii_only=ascii_only
    )


def check_parts(parts: list[str], prof: PrintProfile) -> None:
    """Every part within the caps, numbered exactly, free of markup (and ASCII when asked)."""
    assert parts
    for i, part in enumerate(parts, 1):
        assert part.startswith(f"Part {i} of {len(parts)}\n\n"), part[:30]
        assert len(part) <= prof.emessage_chars
        assert part.splitlines() == part.split("\n")  # no odd line breaks, no trailing newline
        if prof.emessage_lines is not None:
            assert len(part.split("\n")) <= prof.emessage_lines
        assert not MARKUP.search(part), MARKUP.search(part)
        assert part.split("\n")[2].strip(), "a part starts with text, not a blank line"
        if prof.ascii_only:
            assert part.isascii()


def body(part: str) -> str:
    match = HEADER.match(part)
    assert match
    return part[match.end() :]


def joined(parts: list[str]) -> str:
    """All the text of all the parts in order, with the headers and line breaks taken out."""
    return "".join(line for part in parts for line in body(part).split("\n"))


def part_of(parts: list[str], needle: str) -> int:
    (index,) = [i for i, part in enumerate(parts) if needle in part]
    return index


def article(n: int, title: str, summary: str, section: str = "news", **kw: Any) -> Item:
    when = CUTOFF - timedelta(days=1 + n % 5, hours=3)
    return dataclasses.replace(
        Item(
            key=f"a{n}",
            source=section,
            section=section,
            title=title,
            url=f"https://harborcitydpc.example.org/{section}/item-{n}/",
            summary=summary,
            body_html="",
            published=when,
            first_seen=when,
        ),
        **kw,
    )


def big_edition(count: int = 60) -> Edition:
    words = "Visiting hours change at the county jail from next month, and families"
    items = tuple(
        article(n, f"Story {n}: a longer headline", f"{words} story {n}. " * (1 + n % 4))
        for n in range(count)
    )
    sections = tuple(
        Section(f"s{k}", f"Section {k}", items=items[k::6], omitted=k % 2) for k in range(6)
    )
    return dataclasses.replace(golden_edition(), sections=sections)


# --- the golden edition ------------------------------------------------------------------------


def test_default_profile_is_one_part_with_everything_in_words() -> None:
    parts = emessage_parts(golden_edition(), ORG, profile())
    check_parts(parts, profile())
    assert parts == [GOLDEN_TEXT]


def test_links_in_full_events_in_words_address_at_the_end() -> None:
    (text,) = emessage_parts(golden_edition(), ORG, profile())
    for n in (1, 2, 3):
        assert f"\nLink: https://harborcitydpc.example.org/news/item-{n}/\n" in text
    assert "\nharborcitydpc.example.org, 25 November 2026\n" in text
    assert "\nWhen: Tuesday 1 December, 6:30 pm to 8:30 pm\n" in text
    assert "\nWhere: Eastside Community Center, 212 Marsh Street\n" in text
    assert "\nWhen: Saturday 5 December, all day\n" in text
    assert text.endswith("\nHarbor City Drug Policy Coalition\nPO Box 4417, Harbor City, NY 10027")
    assert "&amp;" not in text and "<a" not in text and "<p" not in text


def test_notes_get_their_site_date_and_every_link() -> None:
    note = article(
        7,
        "Volunteer rota",
        "",
        kind=ItemKind.NOTE,
        url=None,
        body_html='<p>Fish &amp;amp; chips &lt;b&gt; at <a href="https://x.example/a?b=1&amp;c=2">'
        "the hall</a>.</p>",
    )
    edition = dataclasses.replace(golden_edition(), sections=(Section("n", "Notes", (note,)),))
    (text,) = emessage_parts(edition, ORG, profile())
    assert "NOTES\nVolunteer rota\nharborcitydpc.example.org, 23 November 2026\n" in text
    assert "Fish & chips < b> at the hall [1].\nLink [1]: https://x.example/a?b=1&c=2\n" in text


def test_jpay_sized_parts_never_cut_an_item() -> None:
    edition, prof = big_edition(), profile(6_000)
    parts = emessage_parts(edition, ORG, prof)
    check_parts(parts, prof)
    assert len(parts) >= 3
    for section in edition.sections:
        for item in section.items:
            assert item.url
            assert part_of(parts, f"\n{item.title}\n") == part_of(parts, f"Link: {item.url}")
    assert parts[-1].endswith("PO Box 4417, Harbor City, NY 10027")


def test_iowa_sized_parts_keep_to_100_lines() -> None:
    edition, prof = big_edition(), profile(13_000, 100)
    parts = emessage_parts(edition, ORG, prof)
    check_parts(parts, prof)
    assert len(parts) >= 4
    assert max(len(p.split("\n")) for p in parts) > 90  # the lines, not the characters, bind
    whole = emessage_parts(edition, ORG, profile(10**9))
    assert joined(parts) == joined(whole)


def test_an_item_longer_than_a_part_is_cut_at_lines_and_in_order() -> None:
    words = " ".join(f"w{n}" for n in range(1500))
    long_url = "https://harborcitydpc.example.org/" + "x" * 900
    item = article(1, "The long one", words, url=long_url)
    edition = dataclasses.replace(golden_edition(), sections=(Section("n", "News", (item,)),))
    prof = profile(300)
    parts = emessage_parts(edition, ORG, prof)
    check_parts(parts, prof)
    text = joined(parts)
    assert text.count("The long one") == 1
    assert text.count(long_url) == 1  # cut inside its line, put back together in order
    assert [int(w) for w in re.findall(r"w(\d+)", text)] == list(range(1500))
    assert len({part_of(parts, f"w{n} ") for n in range(0, 1499, 100)}) > 5


def test_one_line_of_text_a_part_when_the_line_cap_is_3() -> None:
    prof = profile(13_000, 3)
    parts = emessage_parts(golden_edition(), ORG, prof)
    check_parts(parts, prof)
    whole = body(emessage_parts(golden_edition(), ORG, profile())[0])
    lines = [line for line in whole.split("\n") if line]
    assert [body(p) for p in parts] == lines
    assert parts[9].startswith(f"Part 10 of {len(lines)}\n\n")


@pytest.mark.parametrize("kind", ["chars", "lines"])
def test_part_9_of_10_and_10_of_10_both_fit(kind: str) -> None:
    counts = set()
    for limit in range(200, 1200, 7) if kind == "chars" else range(3, 40):
        prof = profile(limit) if kind == "chars" else profile(13_000, limit)
        parts = emessage_parts(big_edition(12), ORG, prof)
        check_parts(parts, prof)
        counts.add(len(parts))
    assert 10 in counts and min(counts) < 10 < max(counts)  # from "Part 9 of 9" to "of 11"


def test_limits_too_small_for_a_line_of_text_are_refused() -> None:
    with pytest.raises(RenderError, match="emessage_lines = 2"):
        emessage_parts(golden_edition(), ORG, profile(13_000, 2))
    tiny = PrintProfile.model_construct(name="tiny", emessage_chars=60)  # config forbids < 200
    with pytest.raises(RenderError, match="'tiny': emessage_chars = 60"):
        emessage_parts(golden_edition(), ORG, tiny)


# --- ASCII only --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("“curly” ‘single’ „low“ «guillemets»", '"curly" \'single\' "low" "guillemets"'),
        ("a — b – c ― d − e", "a -- b - c -- d - e"),
        ("wait… what", "wait... what"),
        ("café naïve Zoë Ångström", "cafe naive Zoe Angstrom"),
        ("a\u00a0b\u2009c\u202fd\u3000e", "a b c d e"),
        ("• one ‣ two · three", "- one - two - three"),
        ("Øresund Straße Æsir Œuvre łódź", "Oresund Strasse AEsir OEuvre lodz"),
        ("soft\u00adhyphen zero\u200bwidth", "softhyphen zerowidth"),
        ("ﬁne ½ ™", "fine 1/2 TM"),
        ("日本 ☃", "?? ?"),
        ("plain ASCII stays\n\tas it is", "plain ASCII stays\n\tas it is"),
    ],
)
def test_ascii_fold(text: str, folded: str) -> None:
    assert ascii_fold(text) == folded


def test_ascii_only_folds_the_whole_message() -> None:
    item = article(1, "Café “Ørsted” — naïve…\u00a0end", "Straße\u2028Œuvre ﹤b﹥ 日本\u00a0!")
    edition = dataclasses.replace(golden_edition(), sections=(Section("n", "Ñews", (item,)),))
    prof = profile(ascii_only=True)
    (text,) = emessage_parts(edition, ORG, prof)
    check_parts([text], prof)
    assert '\nNEWS\nCafe "Orsted" -- naive... end\n' in text
    assert "\nStrasse\nOEuvre < b> ?? !\n" in text  # the small "<" folds to "<", then is defused
    assert "-- The editor" in text
    (unicode_text,) = emessage_parts(edition, ORG, profile())
    assert "\nCafé “Ørsted” — naïve… end\n" in unicode_text  # a title is one line, one space
    assert "\nStraße\nŒuvre ﹤b﹥ 日本\u00a0!\n" in unicode_text


# --- properties --------------------------------------------------------------------------------


def _no_tilde(c: str) -> bool:
    return "~" not in unicodedata.normalize("NFKD", c)  # "~" is kept for the markers below


# Lone surrogates cannot come out of a feed or the database (nor go into an email).
CHARACTERS = st.characters(exclude_categories=["Cs"]).filter(_no_tilde)
TRICKY = "“”‘’—–…é\u00a0\u2028\u2029\r\n\t\x85\x00\x0b<>&#;ßøŒ﹤＜＆"
FRAGMENT = st.one_of(
    st.text(CHARACTERS, max_size=60),
    st.text(st.sampled_from(TRICKY + "ab /"), max_size=30),
    st.sampled_from(["&amp;", "&amp;amp;", "&#38;", "&#x3C;b&#x3E;", "<b>bold</b>", "&lt;i&gt;"]),
    st.sampled_from(["<!-- x -->", "&nbsp;", "&#;", "&foo;", "\n\n", "a\n\n\nb"]),
    st.text("abcdefghij", min_size=73, max_size=400),  # a very long word
    st.text("abcdefghij", min_size=1, max_size=400).map("https://example.org/".__add__),
)
TEXT = st.lists(FRAGMENT, max_size=6).map(" ".join)
START = datetime(2026, 12, 1, 18, 30, tzinfo=ZONE)
Markers = list[tuple[str, str]]


@st.composite
def editions(draw: st.DrawFn) -> tuple[Edition, Markers]:
    """A random edition; each item's title starts with "~kt~" and its text ends with "~ke~"."""
    keys = itertools.count()
    markers: Markers = []

    def marked() -> tuple[int, str, str]:
        k = next(keys)
        markers.append((f"~{k}t~", f"~{k}e~"))
        return k, f"~{k}t~ {draw(TEXT)}", f"{draw(TEXT)} ~{k}e~"

    def item(kind: ItemKind) -> Item:
        k, title, text = marked()
        link = '<a href="https://example.org/l?a=1&amp;b=2">a link</a> '
        body = f"<p>{link if draw(st.booleans()) else ''}{html.escape(text)}</p>"
        url = draw(st.sampled_from([None, f"https://example.org/{k}/", f"http://ex.org/{k}?q"]))
        return article(k, title, text, kind=kind, url=url, body_html=body)

    def event() -> Event:
        k, title, text = marked()
        end = draw(st.sampled_from([None, START + timedelta(hours=2), START + timedelta(days=1)]))
        return Event(
            f"e{k}", "events", title, START, end, draw(st.booleans()), draw(TEXT), None, text
        )

    note = item(ItemKind.EDITOR_NOTE) if draw(st.booleans()) else None
    sections = []
    for n in range(draw(st.integers(0, 4))):
        kinds = draw(st.lists(st.sampled_from([ItemKind.ARTICLE, ItemKind.NOTE]), max_size=5))
        items = tuple(item(kind) for kind in kinds)
        events = tuple(event() for _ in range(draw(st.integers(0, 3))))
        title = draw(st.text(CHARACTERS, max_size=20))
        more = draw(st.sampled_from([None, "https://example.org/more"]))
        sections.append(Section(f"s{n}", title, items, events, draw(st.integers(0, 3)), more))
    edition = dataclasses.replace(golden_edition(), editor_note=note, sections=tuple(sections))
    return edition, markers


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=editions(),
    chars=st.integers(200, 20_000),
    lines=st.none() | st.integers(20, 200),
    ascii_only=st.booleans(),
)
def test_parts_keep_the_caps_and_lose_nothing(
    data: tuple[Edition, Markers], chars: int, lines: int | None, ascii_only: bool
) -> None:
    edition, markers = data
    prof = profile(chars, lines, ascii_only)
    parts = emessage_parts(edition, ORG, prof)
    check_parts(parts, prof)
    (whole,) = emessage_parts(edition, ORG, profile(10**9, None, ascii_only))
    text = joined(parts)
    assert text == joined([whole])  # every character once, in order, whatever the cuts
    if max(len(line) for line in whole.split("\n")) < 150:  # then no line was cut inside
        assert [x for p in parts for x in body(p).split("\n") if x] == [
            x for x in body(whole).split("\n") if x
        ]
    event(f"parts: {'1' if len(parts) == 1 else '2-9' if len(parts) < 10 else '10+'}")
    event(f"items: {'0' if not markers else '1-9' if len(markers) < 10 else '10+'}")
    found = [text.index(m) for pair in markers for m in pair]
    assert found == sorted(found) and len(found) == 2 * len(markers)
    for start, end in markers:
        for marker in (start, end):
            assert sum(p.count(marker) for p in parts) == 1 == text.count(marker), marker
        if part_of(parts, start) != part_of(parts, end):
            event("an item cut in two")
            assert_too_big_for_a_part(whole, start, end, parts, prof)


def assert_too_big_for_a_part(
    whole: str, start: str, end: str, parts: list[str], prof: PrintProfile
) -> None:
    """An item cut in two must be longer than a part could hold (with its section's title)."""
    lines = body(whole).split("\n")
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next(i for i, line in enumerate(lines) if end in line)
    while lines[first - 1]:  # the section's title, or "FROM THE EDITOR", goes with the item
        first -= 1
    while last + 1 < len(lines) and lines[last + 1].startswith("Link"):
        last += 1
    size = len("\n".join(lines[first : last + 1]))
    room = prof.emessage_chars - len(f"Part {len(parts)} of {len(parts)}\n\n")
    too_many_lines = prof.emessage_lines is not None and last - first + 1 > prof.emessage_lines - 2
    assert size > room or too_many_lines, (start, size, room)


def test_a_section_title_in_capitals_never_becomes_markup() -> None:
    # "ß" is "SS" in capitals: "<ß" would come out as "<SS", a tag to a filter inside.
    base = golden_edition()
    first = dataclasses.replace(base.sections[0], title="<ß &amp; <b")
    edition = dataclasses.replace(base, sections=(first, *base.sections[1:]))
    for ascii_only in (False, True):
        parts = emessage_parts(edition, ORG, profile(13_000, None, ascii_only))
        check_parts(parts, profile(13_000, None, ascii_only))
        assert "< SS" in parts[0]
