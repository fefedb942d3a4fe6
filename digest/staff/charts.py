"""The dashboard's numbers as pictures, drawn on the server as inline SVG (the console has
no script): members joining, leaving and bouncing off each list over the last 52 weeks,
and what happened to the last editions sent. Every chart comes with the table it draws.

Bars carry their numbers (``data-series``, ``data-row``, ``data-value``) and every series
has a pattern as well as a colour, so a chart is read without telling colours apart;
each colour keeps 3:1 against both the light and the dark page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from sqlalchemy.engine import Connection

from digest.config import ListSettings, Settings
from digest.staff.numbers import edition_numbers
from digest.store import history

WEEKS = 52
EDITIONS = 12
WIDTH, HEIGHT = 400, 200
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 40, 4, 10, 22
WEEK_TICKS = 13  # a date under every 13th week


@dataclass(frozen=True, slots=True)
class Series:
    key: str
    label: str
    colour: str
    pattern: str  # solid, hatch, cross or dots


JOINED = Series(history.JOINED, "Joined", "#3b78d8", "solid")
LEFT = Series(history.LEFT, "Left", "#c2570c", "hatch")
BOUNCED = Series(history.BOUNCED, "Bounced", "#7b61c4", "cross")
DELIVERED = Series("delivered", "Delivered", "#2e8540", "solid")
SPAM = Series("spam_reports", "Spam reports", "#6b7b8c", "dots")
UNSUBSCRIBES = Series("unsubscribes", "Unsubscribes", "#c2570c", "hatch")


@dataclass(frozen=True, slots=True)
class Stack:
    """Series drawn on top of each other in one bar; ``below`` hangs it under the line."""

    series: tuple[Series, ...]
    below: bool = False


@dataclass(frozen=True, slots=True)
class Chart:
    """One picture and its table: a row per bar (a week or an edition)."""

    id: str
    title: str
    caption: str
    heading: str  # the table's first column
    rows: tuple[str, ...]
    series: tuple[Series, ...]
    values: dict[str, tuple[int, ...]]
    svg: Markup
    legend: tuple[tuple[Series, Markup], ...]

    def table(self) -> list[tuple[str, list[int]]]:
        """The table's rows: heading, then a number per series."""
        return [(r, [self.values[s.key][i] for s in self.series]) for i, r in enumerate(self.rows)]


@dataclass(frozen=True, slots=True)
class Dashboard:
    members: list[Chart]
    editions: list[Chart]
    members_note: str = ""  # how the members are counted, once for every list's chart
    editions_note: str = ""


MEMBERS_NOTE = (
    "How they are counted: joined, put on the list that week (an import, staff, or a "
    "sign-up that was then confirmed; people still asked to confirm are not counted); "
    "left, off the list that week by their unsubscribe or preferences link, by staff, or "
    "by unsubscribing or reporting spam at SendGrid; bounced, on the list until their "
    "address bounced that week. Each membership ends once, so nobody is both left and "
    "bounced; someone who left and was put back shows only their first join. Weeks begin "
    "on Monday in {zone}."
)
EDITIONS_NOTE = (
    "The last {n} editions and alerts sent, oldest first, dated by the first batch "
    "accepted. Counted as on each edition's page: people SendGrid reported delivered, "
    "bounced or reporting spam; unsubscribes are SendGrid's and our own links' in the "
    "week after it went out."
)


def dashboard_charts(conn: Connection, settings: Settings, now: datetime) -> Dashboard:
    """Every chart the dashboard shows, with the notes that say how they count."""
    zone = settings.organisation.zone
    editions = edition_charts(conn, zone)
    return Dashboard(
        members=membership_charts(conn, settings.lists, now, zone),
        editions=editions,
        members_note=MEMBERS_NOTE.format(zone=settings.organisation.timezone),
        editions_note=EDITIONS_NOTE.format(n=len(editions[0].rows)) if editions else "",
    )


def week_starts(now: datetime, zone: ZoneInfo, weeks: int = WEEKS) -> list[datetime]:
    """The Mondays (00:00 in ``zone``) that begin each of the last ``weeks`` weeks, this
    one last, and the Monday after it: ``weeks + 1`` boundaries."""
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    first = monday - timedelta(weeks=weeks - 1)
    return [datetime.combine(first + timedelta(weeks=i), time(), zone) for i in range(weeks + 1)]


def membership_charts(
    conn: Connection, lists: Sequence[ListSettings], now: datetime, zone: ZoneInfo
) -> list[Chart]:
    """A chart per configured list: who joined, left and bounced each week."""
    bounds = week_starts(now, zone)
    counts: dict[tuple[str, int, str], int] = defaultdict(int)
    for slug, week, kind, n in history.membership_weeks(conn, bounds):
        counts[slug, week, kind] += n
    days = [b.date() for b in bounds[:-1]]
    rows = tuple(f"{d.day} {d:%b %Y}" for d in days)
    ticks = tuple(r if i % WEEK_TICKS == 0 else "" for i, r in enumerate(rows))
    series = (JOINED, LEFT, BOUNCED)
    stacks = (Stack((JOINED,)), Stack((LEFT, BOUNCED), below=True))
    charts = []
    for place, listed in enumerate(lists):
        values = {
            s.key: tuple(counts[listed.slug, w, s.key] for w in range(len(days))) for s in series
        }
        chart_id = f"members-{place}"
        title = f"{listed.name}: members joining and leaving, week by week"
        caption = "Joined above the line; left and bounced below it. A bar a week."
        charts.append(
            _chart(chart_id, title, caption, "Week of", rows, series, values, ticks, stacks)
        )
    return charts


def edition_charts(conn: Connection, zone: ZoneInfo) -> list[Chart]:
    """Two charts of the last editions sent: delivered, and what went wrong (on a scale of
    its own: a few bounces would not show beside thousands delivered)."""
    sent = history.sent_editions(conn, EDITIONS)
    if not sent:
        return []
    numbers = [edition_numbers(conn, e.id, tracking=False) for e in sent]
    rows = tuple(e.id for e in sent)
    crowded = len(sent) > EDITIONS // 2  # then every other date, the latest always
    ticks = tuple(
        "" if crowded and (len(sent) - 1 - i) % 2 else _day(e.sent.astimezone(zone))
        for i, e in enumerate(sent)
    )
    charts = []
    for chart_id, title, caption, series in (
        (
            "editions-delivered",
            "Delivered, per edition",
            "A bar per edition, oldest first.",
            (DELIVERED,),
        ),
        (
            "editions-problems",
            "Bounced, spam reports and unsubscribes, per edition",
            "Three bars per edition, oldest first, on a scale of their own.",
            (BOUNCED, SPAM, UNSUBSCRIBES),
        ),
    ):
        values = {s.key: tuple(int(getattr(n, s.key)) for n in numbers) for s in series}
        stacks = tuple(Stack((s,)) for s in series)
        charts.append(
            _chart(chart_id, title, caption, "Edition", rows, series, values, ticks, stacks)
        )
    return charts


def _chart(
    chart_id: str,
    title: str,
    caption: str,
    heading: str,
    rows: tuple[str, ...],
    series: tuple[Series, ...],
    values: dict[str, tuple[int, ...]],
    ticks: tuple[str, ...],
    stacks: tuple[Stack, ...],
) -> Chart:
    """One chart: its numbers, and the SVG and legend drawn from them."""
    return Chart(
        id=chart_id,
        title=title,
        caption=caption,
        heading=heading,
        rows=rows,
        series=series,
        values=values,
        svg=bars_svg(chart_id, title, _totals(values, series), ticks, stacks, values),
        legend=legend(chart_id, series),
    )


def _day(moment: datetime) -> str:
    """'8 Oct'."""
    return f"{moment.day} {moment:%b}"


def _totals(values: dict[str, tuple[int, ...]], series: Sequence[Series]) -> str:
    """The chart's description: each series summed."""
    return "In all: " + ", ".join(f"{sum(values[s.key])} {s.label.lower()}" for s in series) + "."


def bars_svg(
    chart_id: str,
    title: str,
    description: str,
    ticks: Sequence[str],
    stacks: Sequence[Stack],
    values: dict[str, tuple[int, ...]],
) -> Markup:
    """A bar per row and stack: stacks above the line side by side, stacks below it under
    them; one scale for both, so a bar's height is its number times the same factor."""
    rows = len(ticks)
    above = [s for s in stacks if not s.below]
    below = [s for s in stacks if s.below]

    def tallest(side: list[Stack]) -> int:
        sums = [sum(values[x.key][i] for x in s.series) for s in side for i in range(rows)]
        return max(sums, default=0)

    up, down = tallest(above), tallest(below)
    plot = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    scale = plot / (up + down) if up + down else 0.0
    base = MARGIN_TOP + (up * scale if up + down else (plot / 2 if below else plot))
    slot = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / max(rows, 1)
    parts = [
        f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        _patterns(chart_id, [x for s in stacks for x in s.series]),
    ]
    for side, sign in ((above, -1), (below, 1)):
        width = slot * 0.8 / max(len(side), 1)
        for row in range(rows):
            for place, stack in enumerate(side):
                x = MARGIN_LEFT + slot * (row + 0.1) + width * place
                parts += _stack(chart_id, stack, values, row, x, width, base, sign * scale)
    parts += _axes(ticks, slot, base, up, down, bool(below))
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text in it is escaped above


def _stack(
    chart_id: str,
    stack: Stack,
    values: dict[str, tuple[int, ...]],
    row: int,
    x: float,
    width: float,
    base: float,
    scale: float,
) -> list[str]:
    """One bar: its series on top of each other, away from the line (up when ``scale`` is
    negative); a zero draws nothing."""
    rects, done = [], 0
    for series in stack.series:
        value = values[series.key][row]
        if value:
            near, far = base + done * scale, base + (done + value) * scale
            rects.append(
                f'<rect x="{x:.2f}" y="{min(near, far):.2f}" width="{width:.2f}" '
                f'height="{abs(far - near):.2f}" fill="url(#{chart_id}-{series.key})" '
                f'stroke="{series.colour}" stroke-width="0.5" data-series="{series.key}" '
                f'data-row="{row}" data-value="{value}"><title>{value} '
                f"{escape(series.label.lower())}</title></rect>"
            )
        done += value
    return rects


def _axes(
    ticks: Sequence[str], slot: float, base: float, up: int, down: int, below: bool
) -> list[str]:
    """The line, the numbers at the ends of the scale, and a date under some bars."""
    text = 'fill="currentColor" font-size="12" font-family="sans-serif"'
    end = MARGIN_LEFT - 4
    parts = [
        f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{base:.2f}" y2="{base:.2f}" '
        'stroke="currentColor" stroke-width="1"/>',
        f'<text x="{end}" y="{MARGIN_TOP + 4}" text-anchor="end" {text}>{up}</text>',
        f'<text x="{end}" y="{base + 4:.2f}" text-anchor="end" {text}>0</text>',
    ]
    if below:
        bottom = HEIGHT - MARGIN_BOTTOM
        parts.append(f'<text x="{end}" y="{bottom:.2f}" text-anchor="end" {text}>{down}</text>')
    many = len(ticks) > EDITIONS
    for row, tick in enumerate(ticks):
        if tick:
            x = MARGIN_LEFT + slot * row if many else MARGIN_LEFT + slot * (row + 0.5)
            anchor = "start" if many else "middle"
            parts.append(
                f'<text x="{x:.2f}" y="{HEIGHT - 6}" text-anchor="{anchor}" {text}>'
                f"{escape(tick)}</text>"
            )
    return parts


# What each pattern lays over its colour, and how it is turned.
PATTERNS = {
    "solid": ("", ""),
    "hatch": ('<rect width="2" height="6" fill="#fff"/>', "rotate(45)"),
    "cross": (
        '<rect width="1.5" height="6" fill="#fff"/><rect width="6" height="1.5" fill="#fff"/>',
        "rotate(45)",
    ),
    "dots": ('<circle cx="3" cy="3" r="1.3" fill="#fff"/>', ""),
}


def _patterns(chart_id: str, series: Sequence[Series]) -> str:
    """A fill per series: its colour, with white stripes, crossed stripes or dots."""
    defs = []
    for s in series:
        over, turn = PATTERNS[s.pattern]
        turned = f' patternTransform="{turn}"' if turn else ""
        defs.append(
            f'<pattern id="{chart_id}-{s.key}" width="6" height="6" '
            f'patternUnits="userSpaceOnUse"{turned}>'
            f'<rect width="6" height="6" fill="{s.colour}"/>{over}</pattern>'
        )
    return "<defs>" + "".join(defs) + "</defs>"


def legend(chart_id: str, series: Sequence[Series]) -> tuple[tuple[Series, Markup], ...]:
    """A swatch per series, filled as its bars are (the patterns of the chart's own SVG)."""
    return tuple(
        (
            s,
            Markup(  # noqa: S704 - ids and colours are ours
                f'<svg width="18" height="14" aria-hidden="true" focusable="false">'
                f'<rect x="0.5" y="0.5" width="17" height="13" fill="url(#{chart_id}-{s.key})" '
                f'stroke="{s.colour}"/></svg>'
            ),
        )
        for s in series
    )
