"""Named queries for the dashboard's history: members joining and leaving each list week by
week, and the editions that went out.

Weeks are given as their boundaries (aware datetimes, the organisation's Mondays), and
each row is put in its week by a ``CASE`` over those boundaries: the same SQL on SQLite
and PostgreSQL, grouped in the database, and right across clock changes, which a
``date_trunc`` in UTC would not be.

A membership is counted from its current record (there is no history table): it joined
when it was created, unless it is still pending (asked to confirm, never did); it ended
at the first of two moments, leaving the list (``changed`` of an unsubscribed membership)
or its address being suppressed. An end by a bounce suppression is *bounced*, any other
end (our links, the preferences page, staff, SendGrid's unsubscribes and spam reports)
is *left*. Someone who left and was put back shows only their first join.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.store.tables import batches, editions, memberships, subscribers, suppressions

JOINED, LEFT, BOUNCED = "joined", "left", "bounced"
BOUNCES = ("bounce", "invalid")  # suppression reasons that mean the mail could not arrive


def _week_of(column: Any, bounds: Sequence[datetime], first: int = 0, last: int = -1) -> Any:
    """The index of the week ``column`` falls in (``bounds[i] <= column < bounds[i + 1]``),
    halving the weeks at each step (six comparisons for 52 weeks, not 26 on average); the
    caller keeps rows outside ``bounds`` out."""
    last = len(bounds) - 1 if last < 0 else last
    if last - first == 1:
        return sa.literal(first)
    middle = (first + last) // 2
    return sa.case(
        (column < bounds[middle], _week_of(column, bounds, first, middle)),
        else_=_week_of(column, bounds, middle, last),
    )


def _counted(
    conn: Connection, query: sa.Select[Any], bounds: Sequence[datetime]
) -> list[tuple[str, int, str, int]]:
    """(list, week, kind, count) of the rows of ``query`` (columns list_slug, at and kind)
    whose ``at`` falls within ``bounds``."""
    rows = query.subquery()
    week = _week_of(rows.c.at, bounds)
    grouped = (
        sa.select(rows.c.list_slug, week.label("week"), rows.c.kind, sa.func.count())
        .where(rows.c.at >= bounds[0], rows.c.at < bounds[-1])
        .group_by(rows.c.list_slug, week, rows.c.kind)
    )
    return [(slug, int(w), kind, int(n)) for slug, w, kind, n in conn.execute(grouped)]


def membership_weeks(
    conn: Connection, bounds: Sequence[datetime]
) -> list[tuple[str, int, str, int]]:
    """Per list and week (an index into ``bounds``): how many joined, left and bounced."""
    counted = memberships.c.status != "pending"
    joins = sa.select(
        memberships.c.list_slug,
        memberships.c.created.label("at"),
        sa.literal(JOINED).label("kind"),
    ).where(counted, memberships.c.created >= bounds[0])
    left_first = sa.and_(
        memberships.c.status == "unsubscribed",
        memberships.c.changed.is_not(None),
        sa.or_(suppressions.c.created.is_(None), memberships.c.changed <= suppressions.c.created),
    )
    ended = sa.case((left_first, memberships.c.changed), else_=suppressions.c.created)
    bounced = sa.and_(sa.not_(left_first), suppressions.c.reason.in_(BOUNCES))
    ends = (
        sa.select(
            memberships.c.list_slug,
            ended.label("at"),
            sa.case((bounced, sa.literal(BOUNCED)), else_=sa.literal(LEFT)).label("kind"),
        )
        .select_from(
            memberships.join(
                subscribers, subscribers.c.id == memberships.c.subscriber_id
            ).outerjoin(suppressions, suppressions.c.email_key == subscribers.c.email_key)
        )
        .where(counted)
    )
    return _counted(conn, joins, bounds) + _counted(conn, ends, bounds)


def sent_editions(conn: Connection, limit: int) -> list[Row[Any]]:
    """The editions and alerts that went out (a batch accepted), the latest ``limit`` of
    them, oldest first: id, subject and ``sent`` (the first batch accepted)."""
    sent = sa.func.min(batches.c.accepted_at).label("sent")
    latest = (
        sa.select(editions.c.id, editions.c.subject, sent)
        .join(batches, batches.c.edition_id == editions.c.id)
        .where(batches.c.accepted_at.is_not(None))
        .group_by(editions.c.id, editions.c.subject)
        .order_by(sent.desc(), editions.c.id.desc())
        .limit(limit)
    )
    return sorted(conn.execute(latest), key=lambda row: (row.sent, row.id))
