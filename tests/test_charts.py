"""The dashboard's charts: a generated year of joins and leaves comes back week by week, and
every bar of the SVG is the number in the table beside it, on one scale; the last editions'
numbers are each edition's own; a year of 50,000 subscribers is counted quickly."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import time_machine
from fastapi.testclient import TestClient

from digest.config import Secrets
from digest.context import App
from digest.staff import charts
from digest.staff.numbers import edition_numbers
from digest.staff.users import add_user
from digest.store.audience import sync_lists
from digest.store.tables import (
    batches,
    delivery_events,
    editions,
    memberships,
    subscribers,
    suppressions,
)
from digest.web.app import create_app
from tests.conftest import NOW, ZONE
from tests.console_setup import ALERTS, PASSWORD, STAFF

KEY = "charts-test-secret-key-0123456789"
SVG = "{http://www.w3.org/2000/svg}"
PLOT = charts.HEIGHT - charts.MARGIN_TOP - charts.MARGIN_BOTTOM
Counts = dict[str, dict[str, list[int]]]  # list -> series -> a number per week


class Year:
    """Rows for a year of members, and what the chart must count from them."""

    def __init__(self, bounds: list[datetime], first_id: int = 1) -> None:
        self.bounds, self.first_id = bounds, first_id
        self.people: list[dict[str, Any]] = []
        self.members: list[dict[str, Any]] = []
        self.suppressed: list[dict[str, Any]] = []
        self.expected: Counts = {
            slug: {s: [0] * charts.WEEKS for s in ("joined", "left", "bounced")}
            for slug in ("weekly", "alerts")
        }
        self.long_ago = bounds[0] - timedelta(days=200)

    def person(self, *lists: tuple[str, str, datetime, datetime | None]) -> str:
        """One subscriber with memberships (list, status, created, changed); their address."""
        n = self.first_id + len(self.people)
        address = f"p{n}@example.org"
        self.people.append(
            {
                "id": n,
                "email": address,
                "email_key": address,
                "name": "",
                "status": "active",
                "source": "test",
                "created": self.long_ago,
            }
        )
        for slug, status, created, changed in lists:
            self.members.append(
                {
                    "subscriber_id": n,
                    "list_slug": slug,
                    "status": status,
                    "format": "html",
                    "profile": None,
                    "created": created,
                    "changed": changed,
                }
            )
        return address

    def suppress(self, address: str, reason: str, at: datetime) -> None:
        self.suppressed.append(
            {"email_key": address, "email": address, "reason": reason, "origin": "t", "created": at}
        )

    def count(self, slug: str, series: str, week: int) -> None:
        self.expected[slug][series][week] += 1

    def store(self, engine: Any) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(subscribers), self.people)
            conn.execute(sa.insert(memberships), self.members)
            if self.suppressed:
                conn.execute(sa.insert(suppressions), self.suppressed)


def _generated_year(bounds: list[datetime], first_id: int = 1) -> Year:
    """Joins, leaves and bounces that differ from week to week, some on the very edges of
    a week (Monday 00:00 in New York, and the second before the next), and what must not
    be counted: the pending, the long-joined, a second end of the same membership."""
    year = Year(bounds, first_id)
    old = year.long_ago
    for week in range(charts.WEEKS):
        start, end = bounds[week], bounds[week + 1]
        for k in range(week * 37 % 9):
            at = start + timedelta(hours=7 * k)  # the first on Monday 00:00 sharp
            year.person(("weekly", "active", at, None))
            year.count("weekly", "joined", week)
        for k in range(week * 11 % 4):
            at = end - timedelta(seconds=1) if k == 0 else start + timedelta(hours=5 * k)
            year.person(("weekly", "unsubscribed", old, at))
            year.count("weekly", "left", week)
        if week % 10 == 3:
            year.suppress(year.person(("weekly", "active", old, None)), "bounce", start)
            year.count("weekly", "bounced", week)
    week = lambda n: bounds[n] + timedelta(days=2)  # noqa: E731 - a Wednesday
    year.person(("weekly", "pending", week(5), None))  # asked, never confirmed
    before = bounds[0] - timedelta(seconds=1)  # the second before the year began
    year.person(("weekly", "active", before, None))
    year.person(("weekly", "unsubscribed", old, before))
    year.suppress(year.person(("weekly", "active", old, None)), "bounce", before)
    # Left everything (unsubscribed, then suppressed as staff at once): left once.
    year.suppress(year.person(("weekly", "unsubscribed", old, week(20))), "staff", week(20))
    year.count("weekly", "left", 20)
    # Bounced, and taken off the list a week later: bounced, the first end, only.
    year.suppress(year.person(("weekly", "unsubscribed", old, week(31))), "bounce", week(30))
    year.count("weekly", "bounced", 30)
    # Unsubscribed at SendGrid (suppressed, membership untouched): left.
    year.suppress(year.person(("weekly", "active", old, None)), "unsubscribed", week(40))
    year.count("weekly", "left", 40)
    # On both lists: counted on each.
    both = year.person(("weekly", "active", week(50), None), ("alerts", "active", week(50), None))
    year.suppress(both, "invalid", week(51))
    for slug in ("weekly", "alerts"):
        year.count(slug, "joined", 50)
        year.count(slug, "bounced", 51)
    return year


def _project(make_project, monkeypatch, database_url: str):
    monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)
    project = make_project(ALERTS)
    settings, engine = project.settings(), project.engine()
    with engine.begin() as conn:
        sync_lists(conn, settings.lists)
    return settings, engine


def _dashboard(settings, engine) -> str:
    """The dashboard as staff see it on NOW."""
    add_user(engine, STAFF, PASSWORD, who="test", now=NOW)
    with time_machine.travel(NOW, tick=True):
        app = create_app(App(settings, engine, Secrets(secret_key=KEY)))
        client = TestClient(app, base_url="https://testserver")
        page = client.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]  # type: ignore[index]
        client.post("/admin/login", data={"csrf": csrf, "email": STAFF, "password": PASSWORD})
        page = client.get("/admin")
    assert page.status_code == 200 and "Log out" in page.text
    return page.text


def _table(page: str, chart_id: str) -> dict[str, list[int]]:
    """A chart's table: series -> a number per row, in the order of the rows."""
    found = re.search(rf'<table class="numbers" id="{chart_id}-table">(.*?)</table>', page, re.S)
    assert found, f"no table for {chart_id}"
    cells: dict[str, list[int]] = defaultdict(list)
    for series, value in re.findall(r'<td data-series="([^"]+)">(\d+)</td>', found[1]):
        cells[series].append(int(value))
    return dict(cells)


def _bars(page: str, chart_id: str) -> tuple[float, list[dict[str, Any]]]:
    """A chart's line (its y) and bars (series, row, value, y, height), read from its SVG."""
    found = re.search(rf'<svg class="chart" id="{chart_id}".*?</svg>', page, re.S)
    assert found, f"no SVG for {chart_id}"
    svg = ET.fromstring(found[0])
    assert svg.get("role") == "img"
    assert svg.find(f"{SVG}title") is not None and svg.get("aria-labelledby")
    line = svg.find(f"{SVG}line")
    assert line is not None
    bars = [
        {
            "series": r.get("data-series"),
            "row": int(r.get("data-row", "-1")),
            "value": int(r.get("data-value", "-1")),
            "y": float(r.get("y", "nan")),
            "height": float(r.get("height", "nan")),
        }
        for r in svg.iter(f"{SVG}rect")
        if r.get("data-series")
    ]
    return float(line.get("y1", "nan")), bars


def _check_bars(page: str, chart_id: str, below: tuple[str, ...] = ()) -> dict[str, list[int]]:
    """Every bar is its table cell (a bar for each number but 0), all on one scale filling
    the plot; bars above the line (a series each, side by side) end on it, the ones below
    hang from it, stacked in the order of ``below``."""
    table = _table(page, chart_id)
    base, bars = _bars(page, chart_id)
    drawn = {(b["series"], b["row"]): b for b in bars}
    assert len(drawn) == len(bars)
    wanted = {(s, row): v for s, values in table.items() for row, v in enumerate(values) if v}
    assert {key: b["value"] for key, b in drawn.items()} == wanted
    if not bars:
        return table
    rows = len(next(iter(table.values())))
    up = max(table[s][r] for s in table if s not in below for r in range(rows))  # side by side
    down = max((sum(table[s][r] for s in below) for r in range(rows)), default=0)
    scale = PLOT / (up + down)
    for (series, row), bar in drawn.items():
        assert abs(bar["height"] - bar["value"] * scale) < 0.011, (series, row, bar)
        if series in below:  # under the line, after the series stacked before it
            offset = sum(table[s][row] for s in below[: below.index(series)]) * scale
            assert abs(bar["y"] - (base + offset)) < 0.011, (series, row, bar)
        else:
            assert abs(bar["y"] + bar["height"] - base) < 0.011, (series, row, bar)
    tallest = [b for b in bars if b["series"] not in below and b["value"] == up]
    assert tallest and abs(base - tallest[0]["y"] - up * scale) < 0.011  # the plot is filled
    return table


def test_a_year_of_joins_and_leaves_is_drawn_as_its_table(
    make_project, monkeypatch, database_url
) -> None:
    settings, engine = _project(make_project, monkeypatch, database_url)
    bounds = charts.week_starts(NOW, ZONE)
    assert len(bounds) == charts.WEEKS + 1 and bounds[-2] <= NOW < bounds[-1]
    assert {b.astimezone(ZONE).strftime("%a %H:%M") for b in bounds} == {"Mon 00:00"}
    year = _generated_year(bounds)
    year.store(engine)

    page = _dashboard(settings, engine)
    for place, slug in enumerate(("weekly", "alerts")):
        table = _check_bars(page, f"members-{place}", below=("left", "bounced"))
        assert table == year.expected[slug], slug
    weekly = year.expected["weekly"]
    assert sum(weekly["joined"]) > 150 and sum(weekly["left"]) > 60  # a real year of it
    first = bounds[0].astimezone(ZONE).date()
    assert f'<th scope="row">{first.day} {first:%b %Y}</th>' in page  # weeks named by Monday
    assert "people still asked to confirm are not counted" in page  # the note says how


def _sent_edition(conn, n: int, sent: datetime, events: dict[str, int]) -> str:
    edition_id = f"2026-W{n:02d}"
    conn.execute(
        sa.insert(editions).values(
            id=edition_id,
            subject=f"Week {n}",
            since=sent - timedelta(days=7),
            cutoff=sent,
            built_at=sent,
            item_count=1,
            edition_json="{}",
            html="",
            text="",
            state="sent",
        )
    )
    conn.execute(
        sa.insert(batches).values(
            edition_id=edition_id,
            seq=0,
            variant="html",
            transport="outbox",
            state="accepted",
            attempts=1,
            accepted_at=sent,
            created=sent,
            updated=sent,
        )
    )
    rows = [
        {
            "sg_event_id": f"{edition_id}-{kind}-{i}",
            "kind": kind,
            "email": f"r{i}@example.org",
            "edition_id": edition_id,
            "batch": "0",
            "at": sent,
            "received": sent,
            "raw": "{}",
        }
        for kind, count in events.items()
        for i in range(count)
    ]
    if rows:
        conn.execute(sa.insert(delivery_events), rows)
    return edition_id


def test_the_last_editions_sent_are_drawn_with_their_own_numbers(
    make_project, monkeypatch, database_url
) -> None:
    settings, engine = _project(make_project, monkeypatch, database_url)
    with engine.begin() as conn:
        ids = [
            _sent_edition(
                conn,
                n,
                NOW - timedelta(weeks=14 - n),
                {
                    "delivered": 200 + 37 * n % 50,
                    "bounce": n % 4,
                    "spamreport": n % 3 == 0,
                    "unsubscribe": (n * 5) % 7,
                },
            )
            for n in range(14)
        ]
        shown = ids[-charts.EDITIONS :]  # the last twelve, oldest first
        wanted = [edition_numbers(conn, i, tracking=False) for i in shown]
    page = _dashboard(settings, engine)
    delivered = _check_bars(page, "editions-delivered")
    problems = _check_bars(page, "editions-problems")
    assert delivered == {"delivered": [n.delivered for n in wanted]}
    assert problems == {
        "bounced": [n.bounced for n in wanted],
        "spam_reports": [n.spam_reports for n in wanted],
        "unsubscribes": [n.unsubscribes for n in wanted],
    }
    rows = re.findall(r'<th scope="row">(2026-W\d\d)</th>', page)
    assert rows == shown + shown  # one table per chart, the same editions


def test_a_year_of_fifty_thousand_subscribers_is_counted_quickly(
    make_project, monkeypatch, database_url
) -> None:
    settings, engine = _project(make_project, monkeypatch, database_url)
    bounds = charts.week_starts(NOW, ZONE)
    year = Year(bounds)
    span = bounds[-1] - bounds[0]
    for n in range(50_000):
        joined = bounds[0] + span * (n / 50_000)
        if n % 5 == 0:
            year.person(("weekly", "unsubscribed", joined, joined + timedelta(days=20)))
        elif n % 97 == 0:
            year.suppress(year.person(("weekly", "active", joined, None)), "bounce", joined)
        else:
            year.person(("weekly", "active", joined, None), ("alerts", "active", joined, None))
    year.store(engine)
    with engine.connect() as conn:
        started = time.perf_counter()
        drawn = charts.membership_charts(conn, settings.lists, NOW, ZONE)
        took = time.perf_counter() - started
    print(f"\n{engine.dialect.name}: 50,000 subscribers, a year, counted in {took:.2f} s")
    assert sum(drawn[0].values["joined"]) + sum(drawn[1].values["joined"]) > 85_000
    assert took < 3, f"{took:.2f} s"
