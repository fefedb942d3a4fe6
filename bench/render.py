"""Render timings per stage for a full edition (20 articles, 8 events, an editor's note).

Run from the repository root: ``python bench/render.py`` (or ``make bench``). Prints a Markdown
table of the median and 90th-percentile time of each stage, the HTML size, and whether the
whole build is under the 300 ms target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tempfile

from digest.build import build
from digest.config import Settings
from digest.models import Edition, Event, Item, ItemKind, Section
from digest.render import MAX_HTML_BYTES, digest_context, render_email
from digest.render.html import compile_mjml, inline_css, render_mjml
from digest.render.text import render_text
from digest.store import open_engine
from digest.store.content import replace_events, store_items
from tests.golden_edition import CUTOFF, ZONE, golden_settings

TARGET_MS = 300.0
SUMMARY = (
    "A summary of about sixty words that tells the reader what happened, who it affects and "
    "what they can do next — with a dash, “quotes”, an ellipsis… and <angle brackets> & an "
    "ampersand. The council voted on Tuesday evening after a long public comment period, and "
    "the coalition's volunteers were there to speak. Here is what comes next and how to help "
    "before the second reading."
)


def bench_edition() -> Edition:
    """20 articles in three sections, 8 events and an editor's note."""

    def article(n: int, section: str) -> Item:
        when = CUTOFF - timedelta(hours=6 * n + 1)
        return Item(
            key=f"bench-{n}",
            source=section,
            section=section,
            title=f"Story number {n}: a headline of a realistic length for the digest",
            url=f"https://news.example.org/{section}/2026/11/story-{n}/",
            summary=SUMMARY,
            body_html=f"<p>{SUMMARY}</p>",
            published=when,
            first_seen=when,
        )

    def event(n: int) -> Event:
        start = datetime(2026, 11, 28 + n // 3, 10 + n, 30, tzinfo=ZONE)
        return Event(
            key=f"bench-e{n}",
            source="events",
            title=f"Community event number {n}",
            start=start,
            end=None if n % 4 == 3 else start + timedelta(hours=2),
            all_day=n % 4 == 3,
            location="Eastside Community Center, 212 Marsh Street",
            url=f"https://events.example.org/{n}/",
            description="Bring a friend. No experience needed; snacks and childcare provided.",
        )

    note = Item(
        key="bench-note",
        source="notes",
        section="news",
        title="From the editor: a busy week",
        url=None,
        summary="A busy week.",
        body_html='<p>A busy week. <a href="https://example.org/volunteer/">Sign up</a>.</p>'
        "<p>— The editor</p>",
        published=CUTOFF - timedelta(days=1),
        first_seen=CUTOFF - timedelta(days=1),
        kind=ItemKind.EDITOR_NOTE,
    )
    return Edition(
        id="bench",
        subject="Benchmark Coalition: the week of 26 November 2026",
        preheader="From the editor: a busy week · Story number 1",
        since=CUTOFF - timedelta(days=7),
        cutoff=CUTOFF,
        editor_note=note,
        sections=(
            Section("news", "News", items=tuple(article(n, "news") for n in range(10))),
            Section(
                "stories", "Stories", items=tuple(article(n, "stories") for n in range(10, 16))
            ),
            Section(
                "opinion", "Opinion", items=tuple(article(n, "opinion") for n in range(16, 20))
            ),
            Section("events", "Coming up", events=tuple(event(n) for n in range(8))),
        ),
        archive_url="https://digest.example.org/archive/bench",
    )


def whole_build(edition: Edition, settings: Settings, folder: Path) -> Callable[[], object]:
    """``digest build`` as the command runs it: query, assemble, render, store, write files."""
    settings = settings.model_copy(
        update={
            "database_url": f"sqlite:///{folder / 'bench.db'}",
            "edition": settings.edition.model_copy(
                update={
                    "sections": [s.key for s in edition.sections],
                    "max_items_per_section": 10,
                    "events_ahead_days": 30,
                }
            ),
        }
    )
    engine = open_engine(settings.database_url, folder)
    found = [i for s in edition.sections for i in s.items]
    if edition.editor_note:
        found.append(edition.editor_note)
    events = [e for s in edition.sections for e in s.events]
    with engine.begin() as conn:
        store_items(conn, found)
        replace_events(conn, "events", events, from_time=CUTOFF, now=CUTOFF)

    def run() -> object:
        result = build(
            settings, engine, week="2026-W48", out=folder / "out", force=True, now=CUTOFF
        )
        built = result.edition.item_count if result.edition else 0
        assert built == edition.item_count, f"built {built} of {edition.item_count} items"
        return result

    return run


def timed(fn: Callable[[], object], runs: int, warmups: int) -> list[float]:
    """Milliseconds for each of ``runs`` calls, after ``warmups`` untimed calls."""
    for _ in range(warmups):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmups", type=int, default=2)
    args = parser.parse_args()

    edition, settings = bench_edition(), golden_settings()
    start = time.perf_counter()
    email = render_email(edition, settings)  # cold: templates, cssutils and premailer caches
    cold = (time.perf_counter() - start) * 1000
    mjml = render_mjml("email/digest.mjml.j2", **digest_context(edition, settings))
    compiled = compile_mjml(mjml)
    stages: list[tuple[str, Callable[[], object]]] = [
        (
            "Jinja2 → MJML",
            lambda: render_mjml("email/digest.mjml.j2", **digest_context(edition, settings)),
        ),
        ("MJML → HTML (mjml-python)", lambda: compile_mjml(mjml)),
        ("CSS inlining (premailer)", lambda: inline_css(compiled)),
        ("text part", lambda: render_text(edition, settings)),
        ("whole `render_email`", lambda: render_email(edition, settings)),
        (
            "**whole `digest build`** (query, assemble, render, store, write)",
            whole_build(edition, settings, Path(tempfile.mkdtemp(prefix="digest-bench-"))),
        ),
    ]

    items = sum(len(s.items) for s in edition.sections)
    events = sum(len(s.events) for s in edition.sections)
    print(
        f"Edition: {items} articles, {events} events, an editor's note; "
        f"n={args.runs} after {args.warmups} warm-ups; Python {sys.version.split()[0]}\n"
    )
    print("| stage | median ms | p90 ms |")
    print("|---|---:|---:|")
    whole: list[float] = []
    for name, fn in stages:
        samples = timed(fn, args.runs, args.warmups)
        print(f"| {name} | {statistics.median(samples):.2f} | {p90(samples):.2f} |")
        whole = samples

    size = len(email.html.encode())
    print(
        f"\nSizes: MJML {len(mjml.encode()):,} B; compiled {len(compiled.encode()):,} B; "
        f"HTML {size:,} B ({size / 1024:.1f} KB, limit {MAX_HTML_BYTES // 1024} KB); "
        f"text {len(email.text.encode()):,} B"
    )
    median, slow = statistics.median(whole), p90(whole)
    verdict = "under" if slow < TARGET_MS else "OVER"
    print(f"First render in a fresh process (cold caches): {cold:.1f} ms")
    print(
        f"Whole build: median {median:.1f} ms, p90 {slow:.1f} ms: {verdict} the "
        f"{TARGET_MS:.0f} ms target"
    )


if __name__ == "__main__":
    main()
