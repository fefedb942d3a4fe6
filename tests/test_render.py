"""The rendered email: golden files, HTML structure, contrast, the text part, refusals, escaping."""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from datetime import timedelta

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml.html import HtmlElement

from digest.config import Settings
from digest.errors import RenderError
from digest.models import Edition, Event, Item, RenderedEmail, Section
from digest.render import MAX_HTML_BYTES, check_email, render_email
from digest.render.text import WIDTH
from tests.golden_edition import (
    CUTOFF,
    GOLDEN,
    golden_edition,
    golden_settings,
    render_golden,
)

UNSUBSCRIBE = "-unsubscribe_url-"
PREFERENCES = "-preferences_url-"
URL = re.compile(r"https?://\S+")
REFERENCE_LINE = re.compile(r"^\[(\d+)\] (https?://\S+)$")
MARKER = re.compile(r"\[(\d+)\]")
HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|blockquote|body|br|code|div|em|h[1-6]|head|html|i|img|li|meta|ol|p|pre|"
    r"script|span|strong|style|table|tbody|td|th|tr|ul|mj-[a-z-]+)\b[^>]*>",
    re.IGNORECASE,
)
ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);", re.IGNORECASE)
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # dropped when rendered
HOSTILE = ("<script>alert(1)</script>", '" onmouseover="x', "javascript:alert(2)")


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden() -> RenderedEmail:
    return render_golden()


@pytest.fixture(scope="module")
def doc(golden: RenderedEmail) -> HtmlElement:
    return lxml.html.document_fromstring(golden.html)


def styles(element: HtmlElement) -> dict[str, str]:
    """An element's inline style attribute as a property -> value dict."""
    out = {}
    for declaration in (element.get("style") or "").split(";"):
        name, colon, value = declaration.partition(":")
        if colon:
            out[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return out


def hex_colour(value: str) -> str:
    """'#555' or '#0B5394' -> '#0b5394' (the only colour syntax the templates use)."""
    match = re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", value.strip().lower())
    if not match:
        raise AssertionError(
            f"unexpected colour syntax {value!r}: teach the contrast test about it"
        )
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits


def luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB hex colour."""
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio, 1 to 21."""
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def hidden(element: HtmlElement) -> bool:
    """Not shown: display none, or a box of no height that hides what overflows it."""

    def gone(style: dict[str, str]) -> bool:
        squeezed = style.get("max-height", "").rstrip("px") == "0"
        return style.get("display") == "none" or (squeezed and style.get("overflow") == "hidden")

    return any(gone(styles(e)) for e in (element, *element.iterancestors()))


def background_of(element: HtmlElement) -> str:
    """The nearest painted background: an inline background(-color) or a bgcolor attribute."""
    for e in (element, *element.iterancestors()):
        style = styles(e)
        for value in (style.get("background-color"), style.get("background"), e.get("bgcolor")):
            if value and value.startswith("#"):
                return hex_colour(value.split()[0])
    raise AssertionError(f"no background found above <{element.tag}>")


def dark_rules(html: str) -> dict[str, dict[str, str]]:
    """Selector -> declarations of the @media (prefers-color-scheme: dark) block kept in <style>."""
    match = re.search(r"@media\s*\(prefers-color-scheme:\s*dark\)\s*\{(.*?\})\s*\}", html, re.S)
    assert match, "the @media (prefers-color-scheme: dark) block is missing from the HTML"
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", match.group(1)):
        declarations = {}
        for declaration in body.split(";"):
            name, colon, value = declaration.partition(":")
            if colon:
                declarations[name.strip()] = value.replace("!important", "").strip()
        for selector in selectors.split(","):
            rules.setdefault(selector.strip(), {}).update(declarations)
    return rules


def text_lines(text: str) -> list[str]:
    return text.split("\n")


def overlong_lines(text: str) -> list[str]:
    """Lines over 72 columns that are not a URL reference and contain no (unbreakable) URL."""
    bad = []
    for line in text_lines(text):
        if len(line) <= WIDTH or REFERENCE_LINE.match(line) or URL.search(line):
            continue
        bad.append(line)
    return bad


def with_postal_address(base: Settings, address: str) -> Settings:
    org = base.organisation.model_copy(update={"postal_address": address})
    return base.model_copy(update={"organisation": org})


def article(n: int, title: str, summary: str, url: str | None = None) -> Item:
    when = CUTOFF - timedelta(days=1, hours=n)
    return Item(
        key=f"test-{n}",
        source="news",
        section="news",
        title=title,
        url=url if url is not None else f"https://news.example.org/story-{n}/",
        summary=summary,
        body_html=f"<p>{summary}</p>",
        published=when,
        first_seen=when,
    )


def edition_with(items: tuple[Item, ...] = (), events: tuple[Event, ...] = ()) -> Edition:
    sections = []
    if items:
        sections.append(Section("news", "News", items=items))
    if events:
        sections.append(Section("events", "Coming up", events=events))
    return dataclasses.replace(golden_edition(), sections=tuple(sections))


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["html", "txt"])
def test_golden_file_matches(golden: RenderedEmail, part: str) -> None:
    path = GOLDEN / f"email.{part}"
    rendered = (golden.html if part == "html" else golden.text).encode("utf-8")
    expected = path.read_bytes()
    if rendered != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    expected.decode("utf-8", "replace").splitlines(keepends=True),
                    rendered.decode("utf-8", "replace").splitlines(keepends=True),
                    fromfile=str(path),
                    tofile="rendered",
                    n=1,
                )
            )[:30]
        )
        pytest.fail(
            f"{path} differs from the rendered golden edition. If the template change is "
            f"deliberate, run `make golden` and review the diff (git diff tests/golden).\n{diff}",
            pytrace=False,
        )


# --- the HTML part -----------------------------------------------------------------------------


def test_html_document_basics(golden: RenderedEmail, doc: HtmlElement) -> None:
    assert golden.html.startswith("<!DOCTYPE html>")
    assert re.search(r"<html\b[^>]*\blang=\"en\"", golden.html[:500])
    assert doc.get("lang") == "en"
    leftover = re.search(r"</?mj-[a-z-]+", golden.html)
    assert leftover is None, f"an MJML tag survived compilation: {leftover.group()}"
    assert doc.findtext(".//title") == golden.subject


def test_html_references_nothing_remote_but_links(golden: RenderedEmail, doc: HtmlElement) -> None:
    assert "googleapis" not in golden.html
    assert "@import" not in golden.html
    assert "@font-face" not in golden.html
    assert doc.xpath("//link") == [], "a <link> (stylesheet or font) would be fetched remotely"
    assert doc.xpath("//*[@background]") == [], "something loads a remote background"
    # The one image is the logo, on our own web app (never fetched from elsewhere).
    base = golden_settings().delivery.base_url
    sources = [e.get("src") for e in doc.xpath("//*[@src]")]
    assert sources and all(s.startswith(f"{base}/brand/logo.png?v=") for s in sources), sources


def test_html_keeps_media_queries_and_outlook_conditionals(golden: RenderedEmail) -> None:
    style = "".join(lxml.html.document_fromstring(golden.html).xpath("//style/text()"))
    assert "@media only screen and (max-width: 480px)" in style
    assert "@media (prefers-color-scheme: dark)" in style
    assert "@media only screen and (min-width: 480px)" in style  # MJML's column widths
    assert "<!--[if mso" in golden.html
    assert "<o:OfficeDocumentSettings>" in golden.html
    assert "<!--[if !mso]><!-->" in golden.html


def test_html_declares_colour_schemes(doc: HtmlElement) -> None:
    meta = doc.xpath('//head/meta[@name="color-scheme"]')
    assert meta, "no <meta name=color-scheme>: Apple Mail will not use the dark styles"
    assert set(meta[0].get("content").split()) == {"light", "dark"}
    assert doc.xpath('//head/meta[@name="supported-color-schemes"]')


def test_preheader_is_present_but_hidden(golden: RenderedEmail, doc: HtmlElement) -> None:
    preheader = golden_edition().preheader
    holders = [e for e in doc.iter() if (e.text or "").strip() == preheader]
    assert holders, "the preheader text is missing from the HTML"
    assert all(hidden(e) for e in holders), "the preheader is visible in the email body"
    assert holders[0].getparent().tag == "body", "the preheader should come first in <body>"


def test_headings_in_order(doc: HtmlElement) -> None:
    headings = doc.xpath("//h1|//h2|//h3|//h4|//h5|//h6")
    levels = [int(h.tag[1]) for h in headings]
    assert levels[0] == 1 and levels.count(1) == 1, levels
    assert {1, 2, 3} <= set(levels)
    skips = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
    assert not skips, f"heading levels skip: {skips} in {levels}"
    assert [h.text_content() for h in doc.xpath("//h2")] == [
        "From the editor",
        "News",
        "Stories",
        "Coming up",
    ]


def test_css_is_inlined(doc: HtmlElement) -> None:
    for tag in ("h1", "h2", "h3"):
        for heading in doc.xpath(f"//{tag}"):
            assert "font-size" in styles(heading), f"<{tag}> has no inline font-size"
    for link in doc.xpath("//a"):
        assert "color" in styles(link), f"link {link.get('href')} has no inline colour"
    for meta in doc.xpath('//p[contains(@class, "meta")]'):
        assert styles(meta).get("font-size") == "14px"


def test_every_link_has_an_href(doc: HtmlElement) -> None:
    links = doc.xpath("//a")
    assert len(links) >= 10
    empty = [lxml.html.tostring(a, encoding="unicode") for a in links if not a.get("href", "")]
    assert not empty, f"links without a target: {empty}"
    assert not [a for a in links if a.get("href").strip().lower().startswith("javascript:")]


def test_footer_and_browser_link(golden: RenderedEmail, doc: HtmlElement) -> None:
    org = golden_settings().organisation
    archive = golden_edition().archive_url

    def link_text(href: str) -> list[str]:
        return [a.text_content() for a in doc.xpath("//a") if a.get("href") == href]

    assert link_text(UNSUBSCRIBE) == ["Unsubscribe"]
    assert link_text(PREFERENCES) == ["Change your preferences"]
    assert "View this email in your browser" in link_text(archive)
    address = doc.xpath('//p[contains(@class, "address")]')
    assert address and org.postal_address in address[0].text_content()
    assert not hidden(address[0])


# --- contrast ----------------------------------------------------------------------------------


def test_light_mode_contrast(doc: HtmlElement) -> None:
    """Every visible inline text colour against the background actually painted behind it."""
    pairs: dict[tuple[str, str], str] = {}
    for element in doc.iter():
        if not isinstance(element.tag, str) or hidden(element):
            continue
        colour = styles(element).get("color")
        if colour:
            pairs.setdefault((hex_colour(colour), background_of(element)), element.tag)
    page = hex_colour(doc.find("body").get("bgcolor"))
    sheet = hex_colour(styles(doc.xpath('//div[contains(@class, "sheet")]')[0])["background-color"])
    backgrounds = {bg for _, bg in pairs}
    assert {page, sheet} <= backgrounds, f"contrast pairs only on {backgrounds}"
    assert len({fg for fg, _ in pairs}) >= 4, pairs  # text, link, meta, footer text, footer link
    low = {
        f"{fg} on {bg} ({tag}): {contrast(fg, bg):.2f}"
        for (fg, bg), tag in pairs.items()
        if contrast(fg, bg) < 4.5
    }
    assert not low, f"colour pairs under WCAG AA 4.5:1: {sorted(low)}"


def test_dark_mode_contrast(golden: RenderedEmail) -> None:
    rules = dark_rules(golden.html)
    page = hex_colour(rules[".page"]["background-color"])
    footer = hex_colour(rules[".footer"]["background-color"])
    sheet = hex_colour(rules[".sheet"]["background-color"])
    foregrounds = {
        "text": hex_colour(rules["p"]["color"]),
        "heading": hex_colour(rules["h2"]["color"]),
        "link": hex_colour(rules["a"]["color"]),
        "meta": hex_colour(rules[".meta"]["color"]),
    }
    assert luminance(sheet) < 0.05 and luminance(page) < 0.05, "dark backgrounds are not dark"
    low = [
        f"{name} {fg} on {bg}: {contrast(fg, bg):.2f}"
        for name, fg in foregrounds.items()
        for bg in {page, footer, sheet}
        if contrast(fg, bg) < 4.5
    ]
    assert not low, f"dark-mode colour pairs under WCAG AA 4.5:1: {low}"


def test_outlook_com_dark_rules_are_kept(doc: HtmlElement) -> None:
    """Rules that match nothing when rendered (Outlook.com adds data-ogsc) survive inlining."""
    head_css = " ".join(doc.xpath("//head/style/text()"))
    assert "[data-ogsc] h1" in head_css
    assert re.search(r"\[data-ogsc\] a\s*\{\s*color:\s*#8ab4f8", head_css)


# --- the text part -----------------------------------------------------------------------------


def test_text_lines_fit_72_columns(golden: RenderedEmail) -> None:
    bad = overlong_lines(golden.text)
    assert not bad, f"text lines over {WIDTH} columns: {bad}"
    assert golden.text.endswith("\n") and "\r" not in golden.text


def test_text_links_are_numbered_references_after_each_item(golden: RenderedEmail) -> None:
    lines = text_lines(golden.text)
    references = [(i, REFERENCE_LINE.match(line)) for i, line in enumerate(lines)]
    references = [(i, m) for i, m in references if m]
    numbers = [int(m.group(1)) for _, m in references]
    assert numbers == list(range(1, len(numbers) + 1)), f"references out of order: {numbers}"

    edition = golden_edition()
    linked = [(i.title, i.url) for s in edition.sections for i in s.items if i.url]
    linked += [(e.title, e.url) for s in edition.sections for e in s.events if e.url]
    assert len(linked) + 1 == len(numbers)  # + the link inside the editor's note
    blocks = golden.text.split("\n\n")
    for title, url in linked:
        block = next((b for b in blocks if b.startswith(title)), None)
        assert block, f"no paragraph starts with the item title {title!r}"
        marker = MARKER.search(block.split("\n")[0] + " ")
        assert marker and block.split("\n")[0].endswith(marker.group()), block
        n = marker.group(1)
        assert f"\n[{n}] {url}" in block, f"[{n}] {url} is not listed under {title!r}"
        assert block.rstrip("\n").endswith(url), (
            f"the reference is not the item's last line: {block}"
        )
    unlinked = [e.title for s in edition.sections for e in s.events if not e.url]
    for title in unlinked:
        assert f"\n{title}\n" in golden.text, f"{title!r} should appear without a marker"
    # The note's link: the marker in its text, then the reference under the note.
    note = golden.text.index("A week of small wins")
    assert golden.text.index("Sign up for a shift [1]", note) < golden.text.index(
        "[1] https://harborcitydpc.example.org/volunteer/"
    )


def test_text_has_no_markup(golden: RenderedEmail) -> None:
    assert not HTML_TAG.search(golden.text), HTML_TAG.search(golden.text)
    assert not ENTITY.search(golden.text), ENTITY.search(golden.text)
    # The characters the HTML escapes appear as themselves.
    assert "“quotes” & ampersands" in golden.text
    assert "<angle brackets>" in golden.text


def test_text_footer(golden: RenderedEmail) -> None:
    org = golden_settings().organisation
    assert f"Unsubscribe: {UNSUBSCRIBE}\n" in golden.text
    assert f"Change your preferences: {PREFERENCES}\n" in golden.text
    assert golden.text.endswith(f"{org.name}\n{org.postal_address}\n")
    assert f"View online: {golden_edition().archive_url}\n" in golden.text


# --- check_email refusals ----------------------------------------------------------------------


def test_refuses_html_that_gmail_would_clip() -> None:
    summary = "A long summary that keeps going with plenty of words in it. " * 12
    items = tuple(article(n, f"A long story, number {n}", summary) for n in range(80))
    with pytest.raises(RenderError, match=r"the HTML email is \d+ KB, over the 100 KB limit"):
        render_email(edition_with(items), golden_settings())


def test_size_limit_counts_bytes_not_characters(golden: RenderedEmail) -> None:
    room = MAX_HTML_BYTES - len(golden.html.encode())
    padded = golden.html.replace("</body>", "x" * room + "</body>")
    check_email(dataclasses.replace(golden, html=padded), golden_settings())  # exactly the limit
    over = golden.html.replace("</body>", "é" * (room // 2 + 1) + "</body>")
    assert len(over) < MAX_HTML_BYTES < len(over.encode())
    with pytest.raises(RenderError, match="over the 100 KB limit"):
        check_email(dataclasses.replace(golden, html=over), golden_settings())


@pytest.mark.parametrize("address", ["", "  \n "])
def test_refuses_an_empty_postal_address(address: str) -> None:
    with pytest.raises(RenderError, match="postal_address is empty"):
        render_email(golden_edition(), with_postal_address(golden_settings(), address))


@pytest.mark.parametrize(
    ("part", "change", "message"),
    [
        ("html", lambda s: s.replace(UNSUBSCRIBE, "https://x.example/u"), "HTML part has no unsub"),
        ("text", lambda s: s.replace(UNSUBSCRIBE, "https://x.example/u"), "text part has no unsub"),
        ("html", lambda s: s.replace("PO Box 4417", "Box"), "HTML part does not show the postal"),
        ("text", lambda s: s.replace("PO Box 4417", "Box"), "text part does not show the postal"),
    ],
)
def test_refuses_a_part_without_unsubscribe_or_address(
    golden: RenderedEmail, part: str, change: object, message: str
) -> None:
    assert callable(change)
    broken = dataclasses.replace(golden, **{part: change(getattr(golden, part))})
    with pytest.raises(RenderError, match=message):
        check_email(broken, golden_settings())


# --- hostile content ---------------------------------------------------------------------------


def test_hostile_content_is_escaped() -> None:
    bad = " ".join(HOSTILE)
    items = (article(1, f"Title {bad}", f"Summary {bad}"),)
    events = (
        Event(
            key="hostile",
            source="events",
            title=f"Event {bad}",
            start=CUTOFF + timedelta(days=2),
            end=None,
            all_day=False,
            location=f"Room {bad}",
            url="https://events.example.org/e/",
            description=f"Description {bad}",
        ),
    )
    email = render_email(edition_with(items, events), golden_settings())
    assert "<script" not in email.html.lower()
    doc = lxml.html.document_fromstring(email.html)
    assert doc.xpath("//script") == []
    assert not [e for e in doc.iter() if isinstance(e.tag, str) and "onmouseover" in e.attrib]
    assert not re.search(r"<[^<>]*\sonmouseover\s*=", email.html, re.IGNORECASE)
    assert not [a for a in doc.xpath("//a") if "javascript:" in a.get("href", "").lower()]
    # ... and shown as the text it is.
    visible = doc.text_content()
    for field in ("Title", "Summary", "Event", "Room", "Description"):
        assert f"{field} {bad}" in visible
    assert f"Title {bad} [2]" in email.text  # [1] is the link in the editor's note
    assert f"Where: Room {bad}" in " ".join(email.text.split())  # wrapped


# --- properties --------------------------------------------------------------------------------

_CHARS = st.characters(blacklist_categories=("Cs",))  # any character but lone surrogates
_WORD = st.one_of(
    st.text(_CHARS, max_size=12),
    st.sampled_from(["<", "&", "&amp;", "<b>", "</mj-text>", "{{ x }}", '"', "'", *HOSTILE]),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzé"), min_size=60, max_size=120),
)
_PHRASE = st.lists(_WORD, min_size=1, max_size=25).map(" ".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(titles=st.lists(st.tuples(_PHRASE, _PHRASE), min_size=1, max_size=4))
def test_any_title_and_summary_renders(titles: list[tuple[str, str]]) -> None:
    items = tuple(article(n, title, summary) for n, (title, summary) in enumerate(titles))
    email = render_email(edition_with(items), golden_settings())
    assert "<script" not in email.html.lower()
    doc = lxml.html.document_fromstring(email.html)
    shown = [" ".join(h.text_content().split()) for h in doc.xpath("//h3")]
    for title, summary in ((CONTROLS.sub("", t), CONTROLS.sub("", s)) for t, s in titles):
        assert " ".join(title.split()) in shown
        assert " ".join(summary.split()) in " ".join(doc.text_content().split())
        # The text part may cut words longer than a line, so compare without white space.
        assert "".join(title.split()) in "".join(email.text.split())
    bad = overlong_lines(email.text)
    assert not bad, f"text lines over {WIDTH} columns: {bad}"


def test_long_words_are_broken_but_urls_are_not() -> None:
    url = "https://news.example.org/" + "long-path/" * 10
    summary = f"A word {'y' * 100} and a link {url} in a summary."
    email = render_email(edition_with((article(1, "Title", summary),)), golden_settings())
    assert not overlong_lines(email.text), overlong_lines(email.text)
    assert "y" * WIDTH in email.text, "a long word should be cut into 72-column pieces"
    assert any(line.endswith(url) or f"{url} " in line for line in text_lines(email.text)), (
        "the URL was broken across lines"
    )


@pytest.mark.parametrize("char", ["\x01", "\x08", "\x1f", "\x7f", "\uffff"])
def test_control_characters_are_dropped(char: str) -> None:
    """A stray control character in a feed or calendar must not stop the whole edition."""
    event = Event(
        key="e",
        source="events",
        title=f"Event{char}",
        start=CUTOFF + timedelta(days=2),
        end=None,
        all_day=True,
        location=f"Room{char} 4",
        description=f"About{char}",
    )
    items = (article(1, f"Meet{char}ing", f"Sum{char}mary"),)
    email = render_email(edition_with(items, (event,)), golden_settings())
    for part in (email.html, email.text):
        assert char not in part
        assert "Meeting" in part and "Summary" in part and "Room 4" in part
