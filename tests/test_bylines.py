"""What readers see of the sources: bylines naming the author and the outlet (not the site's
domain), a feed's corrections reaching the stored item and the rebuilt edition, and the
editor's note headed "From the editor" once."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import lxml.html
import pytest
import respx
import sqlalchemy as sa
import time_machine
from typer.testing import CliRunner

from digest.cli import app
from digest.collect.feeds import parse_feed
from digest.config import PrintProfile
from digest.models import Item
from digest.render import render_email
from digest.render.emessage import emessage_parts
from digest.render.print import render_print
from digest.render.templates import byline, note_title
from digest.store.tables import items
from tests.conftest import NOW
from tests.golden_edition import golden_edition, golden_settings

FEED_URL = "https://news.example.org/feed.xml"
RSS_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}


def parsed(body: str) -> list[Item]:
    feed = parse_feed(
        body.encode(), source="news", section="news", url=FEED_URL, now=NOW, summary_chars=300
    )
    return feed.items


def rss(*entries: str) -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<channel><title>Coalition news</title>" + "".join(entries) + "</channel></rss>"
    )


def entry(guid: str, extra: str = "", text: str = "A summary.") -> str:
    return (
        f"<item><title>Story {guid}</title><link>https://news.example.org/{guid}</link>"
        f"<guid>{guid}</guid><pubDate>Tue, 24 Nov 2026 14:15:00 -0500</pubDate>"
        f"<description>{text}</description>{extra}</item>"
    )


# --- reading authors and outlets ------------------------------------------------------------------


def test_rss_bylines_name_the_author_and_the_outlet_never_an_address() -> None:
    found = parsed(
        rss(
            entry(
                "a",
                "<dc:creator>Jane Doe</dc:creator>"
                '<source url="https://theguardian.example/rss">The Guardian</source>',
            ),
            entry("b", "<author>jane@example.org (Jane Doe)</author>"),
            entry("c", "<author>desk@example.org</author>"),
            entry("d", "<dc:creator>Bob Roe</dc:creator><dc:creator>Ann Li</dc:creator>"),
            entry("e"),
            entry("f", "<dc:creator>press@example.org</dc:creator>"),
        )
    )
    assert [(i.author, i.outlet) for i in found] == [
        ("Jane Doe", "The Guardian"),
        ("Jane Doe", ""),
        ("", ""),  # a bare address is no byline, and is not published
        ("Bob Roe and Ann Li", ""),
        ("", ""),
        ("", ""),  # nor is one given as a name
    ]


def test_atom_and_json_feed_bylines() -> None:
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        "<entry><title>A</title><id>a</id><link href='https://x.example.org/a'/>"
        "<author><name>Jane Doe</name><email>j@x.example.org</email></author>"
        "<author><name>Kim Park</name></author>"
        "<source><id>s</id><title>Reuters</title></source>"
        "<summary>S.</summary></entry></feed>"
    )
    (item,) = parsed(atom)
    assert (item.author, item.outlet) == ("Jane Doe and Kim Park", "Reuters")
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {
                "id": "1",
                "url": "https://x.example.org/1",
                "content_text": "x",
                "authors": [{"name": "Ana"}, {"name": "Bo"}, {"name": "Cy"}],
            },
            {
                "id": "2",
                "url": "https://x.example.org/2",
                "content_text": "x",
                "author": {"name": "Dee"},
            },
            {
                "id": "4",
                "url": "https://x.example.org/4",
                "content_text": "x",
                "author": {"name": "desk@example.org"},  # an address is not published
            },
            {
                "id": "3",
                "url": "https://x.example.org/3",
                "content_text": "x",
                "author": "not an object",
            },
        ],
    }
    found = parsed(json.dumps(doc))
    assert [(i.author, i.outlet) for i in found] == [
        ("Ana, Bo and Cy", ""),
        ("Dee", ""),
        ("", ""),
        ("", ""),
    ]


def article(**changes: object) -> Item:
    base = golden_edition().sections[0].items[0]
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("author", "outlet", "shown"),
    [
        ("Jane Doe", "The Guardian", "By Jane Doe, The Guardian"),
        ("Jane Doe", "", "By Jane Doe"),
        ("", "The Guardian", "The Guardian"),
        ("", "", "harborcitydpc.example.org"),  # nothing known: the link's site, as before
    ],
)
def test_the_byline_says_who_and_where(author: str, outlet: str, shown: str) -> None:
    assert byline(article(author=author, outlet=outlet)) == shown


def test_every_part_shows_the_byline(tmp_path: Path) -> None:
    edition = golden_edition()
    news = edition.sections[0]
    first = replace(news.items[0], author="Jane Doe", outlet="The Guardian")
    edition = replace(edition, sections=(replace(news, items=(first, *news.items[1:])),))
    email = render_email(edition, golden_settings())
    meta = lxml.html.document_fromstring(email.html).xpath('//p[@class="meta"]')[1]
    assert meta.text_content() == "By Jane Doe, The Guardian · 25 Nov"
    assert "\nBy Jane Doe, The Guardian, 25 Nov\n" in email.text
    (part,) = emessage_parts(edition, golden_settings().organisation, PrintProfile(name="p"))
    assert "\nBy Jane Doe, The Guardian, 25 November 2026\n" in part
    if shutil.which("pdftotext"):
        pdf = tmp_path / "p.pdf"
        pdf.write_bytes(render_print(edition, golden_settings(), PrintProfile(name="p")).pdf)
        words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
        assert "By Jane Doe, The Guardian · Wednesday 25 November 2026" in words.stdout


# --- corrections ----------------------------------------------------------------------------------


def collect_cli(project) -> str:
    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(app, ["collect", "--config", str(project.config)])
    assert result.exit_code == 0, result.output
    return result.output


def build_cli(project, out: Path) -> str:
    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(
            app, ["build", "--config", str(project.config), "--out", str(out), "--force"]
        )
    assert result.exit_code == 0, result.output
    return (out / "email.txt").read_text() + (out / "email.html").read_text()


def test_a_corrected_item_is_updated_and_the_rebuilt_edition_shows_it(
    make_project, respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    project = make_project(f'[[sources.feeds]]\nname = "news"\nurl = "{FEED_URL}"\n')
    before = rss(
        entry("ops", "<dc:creator>Jane Doe</dc:creator>", "The vote was 8 to 4."),
        entry("nal", "", "Free kits."),
    )
    after = rss(
        entry("ops", "<dc:creator>Jane Doe</dc:creator>", "The vote was 9 to 4."),
        entry("nal", "", "Free kits."),
    )
    respx_mock.get(FEED_URL).mock(
        side_effect=[
            httpx.Response(200, content=before.encode(), headers=RSS_HEADERS),
            httpx.Response(200, content=after.encode(), headers=RSS_HEADERS),
            httpx.Response(200, content=after.encode(), headers=RSS_HEADERS),
        ]
    )
    assert "feed 'news': 2 new\n" in collect_cli(project)
    assert "8 to 4" in build_cli(project, tmp_path / "first")

    output = collect_cli(project)
    assert "feed 'news': 0 new, 1 updated\n" in output
    rebuilt = build_cli(project, tmp_path / "second")
    assert "9 to 4" in rebuilt and "8 to 4" not in rebuilt

    assert "updated" not in collect_cli(project)  # the same text again: nothing to update
    with project.engine().connect() as conn:
        rows = conn.execute(sa.select(items.c.summary, items.c.first_seen)).all()
    assert len(rows) == 2 and sorted(r.summary for r in rows) == [
        "Free kits.",
        "The vote was 9 to 4.",
    ]


def test_a_new_author_or_outlet_is_a_correction_too(make_project) -> None:
    from digest.store import content

    project = make_project()
    engine = project.engine()
    (item,) = parsed(rss(entry("a", "<dc:creator>J. Doe</dc:creator>")))
    with engine.begin() as conn:
        assert content.store_items(conn, [item]) == (1, 0)
        assert content.update_items(conn, [item]) == 0
        assert content.update_items(conn, [replace(item, author="Jane Doe")]) == 1
        assert content.update_items(conn, [replace(item, author="Jane Doe", outlet="AP")]) == 1
        assert content.update_items(conn, [replace(item, source="other", title="X")]) == 0
        later = replace(item, author="Jane Doe", outlet="AP", published=NOW + timedelta(days=1))
        assert content.update_items(conn, [later]) == 0  # the dates are not the text
    with engine.connect() as conn:
        (stored,) = content.items_for_edition(
            conn, window_start=NOW - timedelta(days=7), cutoff=NOW, previous_cutoff=None
        )
    assert (stored.author, stored.outlet, stored.published) == ("Jane Doe", "AP", item.published)


# --- the editor's note ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("From the editor: a week of small wins", "A week of small wins"),
        ("FROM THE EDITOR — Hard news", "Hard news"),
        ("From the editor", ""),
        ("A week of small wins", "A week of small wins"),
        ("From the editors of the Ledger", "From the editors of the Ledger"),
    ],
)
def test_the_notes_title_does_not_repeat_the_heading(title: str, shown: str) -> None:
    assert note_title(title) == shown


def test_the_editors_note_is_headed_once_in_every_part(tmp_path: Path) -> None:
    edition = golden_edition()
    assert edition.editor_note is not None
    note = replace(edition.editor_note, title="From the editor: a week of small wins")
    edition = replace(edition, editor_note=note)
    email = render_email(edition, golden_settings())
    doc = lxml.html.document_fromstring(email.html)
    assert doc.xpath("//h2")[0].text_content() == "From the editor"
    assert doc.xpath("//h3")[0].text_content() == "A week of small wins"
    assert email.html.lower().count("from the editor") == 1
    assert email.text.lower().count("from the editor") == 1
    assert "FROM THE EDITOR\n---------------\n\nA week of small wins\n" in email.text
    (part,) = emessage_parts(edition, golden_settings().organisation, PrintProfile(name="p"))
    assert part.lower().count("from the editor") == 1 and "A week of small wins" in part
    if shutil.which("pdftotext"):
        pdf = tmp_path / "p.pdf"
        pdf.write_bytes(render_print(edition, golden_settings(), PrintProfile(name="p")).pdf)
        words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
        assert words.stdout.lower().count("from the editor") == 1
        assert "A week of small wins" in words.stdout


def test_a_note_titled_only_from_the_editor_has_no_second_heading() -> None:
    edition = golden_edition()
    assert edition.editor_note is not None
    edition = replace(edition, editor_note=replace(edition.editor_note, title="From the editor"))
    email = render_email(edition, golden_settings())
    doc = lxml.html.document_fromstring(email.html)
    assert doc.xpath("//h3")[0].text_content() != "From the editor"
    assert "FROM THE EDITOR\n---------------\n\nTwo more sites" in email.text
