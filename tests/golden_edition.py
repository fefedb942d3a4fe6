"""A fixed edition for the golden-file tests; `make golden` rewrites the snapshots.

Run as ``python -m tests.golden_edition`` to regenerate tests/golden/email.html and
email.txt after a deliberate template change, then review the diff.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.config import Settings
from digest.models import Edition, Event, Item, ItemKind, RenderedEmail, Section
from digest.render import render_email

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
ZONE = ZoneInfo("America/New_York")
CUTOFF = datetime(2026, 11, 26, 7, 0, tzinfo=ZONE)


def sample_branding() -> dict[str, object]:
    """The sample config.toml's [branding] table, its logo path made absolute."""
    with (ROOT / "config.toml").open("rb") as fh:
        branding: dict[str, object] = tomllib.load(fh).get("branding", {})
    if isinstance(branding.get("logo"), str):
        branding["logo"] = str(ROOT / str(branding["logo"]))
    return branding


def golden_settings() -> Settings:
    return Settings.model_validate(
        {
            "branding": sample_branding(),
            "organisation": {
                "name": "Harbor City Drug Policy Coalition",
                "postal_address": "PO Box 4417, Harbor City, NY 10027",
                "website": "https://harborcitydpc.example.org",
                "reply_to": "newsletter@harborcitydpc.example.org",
                "timezone": "America/New_York",
            },
            "delivery": {
                "from_email": "newsletter@harborcitydpc.example.org",
                "base_url": "https://digest.harborcitydpc.example.org",
            },
        }
    )


def _article(n: int, title: str, summary: str, section: str = "news") -> Item:
    when = CUTOFF - timedelta(days=n, hours=3)
    return Item(
        key=f"golden-{section}-{n}",
        source=section,
        section=section,
        title=title,
        url=f"https://harborcitydpc.example.org/{section}/item-{n}/",
        summary=summary,
        body_html=f"<p>{summary}</p>",
        published=when,
        first_seen=when,
    )


def golden_edition() -> Edition:
    note = Item(
        key="golden-note",
        source="notes",
        section="news",
        title="A week of small wins",
        url=None,
        summary="Two more sites cleared the council.",
        body_html='<p>Two more sites cleared the council. <a href="https://harborcitydpc.'
        'example.org/volunteer/">Sign up for a shift</a>.</p><p>— The editor</p>',
        published=CUTOFF - timedelta(days=1),
        first_seen=CUTOFF - timedelta(days=1),
        kind=ItemKind.EDITOR_NOTE,
    )
    news = tuple(
        _article(
            i,
            f"News story number {i}: “quotes” & ampersands",
            "A summary of about thirty words that tells the reader what "
            "happened, who it affects and what they can do next — with a "
            "dash, an ellipsis… and <angle brackets>.",
        )
        for i in range(1, 4)
    )
    stories = (
        _article(
            2,
            "A Saturday shift at books-to-prisoners",
            "Forty-one request letters, one long table and a lot of tape.",
            "stories",
        ),
    )
    events = (
        Event(
            key="e1",
            source="events",
            title="Letter-writing night",
            start=datetime(2026, 12, 1, 18, 30, tzinfo=ZONE),
            end=datetime(2026, 12, 1, 20, 30, tzinfo=ZONE),
            all_day=False,
            location="Eastside Community Center, 212 Marsh Street",
            url="https://harborcitydpc.example.org/events/letters/",
            description="Write to people in prison. No experience needed.",
        ),
        Event(
            key="e2",
            source="events",
            title="Statewide day of action",
            start=datetime(2026, 12, 5, 0, 0, tzinfo=ZONE),
            end=None,
            all_day=True,
        ),
    )
    return Edition(
        id="2026-W48",
        subject="Harbor City Drug Policy Coalition: the week of 26 November 2026",
        preheader="A week of small wins · News story number 1",
        since=CUTOFF - timedelta(days=7),
        cutoff=CUTOFF,
        editor_note=note,
        sections=(
            Section(
                "news",
                "News",
                items=news,
                omitted=2,
                more_url="https://harborcitydpc.example.org/news/",
            ),
            Section("stories", "Stories", items=stories),
            Section("events", "Coming up", events=events),
        ),
        archive_url="https://digest.harborcitydpc.example.org/archive/2026-W48",
    )


def render_golden() -> RenderedEmail:
    return render_email(golden_edition(), golden_settings())


def main() -> None:
    email = render_golden()
    GOLDEN.mkdir(exist_ok=True)
    (GOLDEN / "email.html").write_text(email.html, encoding="utf-8")
    (GOLDEN / "email.txt").write_text(email.text, encoding="utf-8")
    print(f"wrote {GOLDEN / 'email.html'} and {GOLDEN / 'email.txt'}: review the diff")


if __name__ == "__main__":
    main()
