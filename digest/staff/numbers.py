"""What happened to an edition after it left: SendGrid's events and the unsubscribes it led to.

Opens and clicks are counted only when ``delivery.tracking`` is on; otherwise nothing tracks
readers and the console does not show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.tables import batches, delivery_events, memberships, send_recipients


@dataclass(frozen=True, slots=True)
class EditionNumbers:
    accepted: int
    delivered: int
    bounced: int
    spam_reports: int
    unsubscribes: int
    blocked: int
    deferred: int
    dropped: int
    opens: int | None
    clicks: int | None


def _people_by_kind(conn: Connection, edition_id: str) -> dict[str, int]:
    rows = conn.execute(
        sa.select(delivery_events.c.kind, sa.func.count(sa.distinct(delivery_events.c.email)))
        .where(delivery_events.c.edition_id == edition_id)
        .group_by(delivery_events.c.kind)
    )
    return {kind: int(count) for kind, count in rows}


def _web_unsubscribes(conn: Connection, edition_id: str) -> int:
    """Recipients of this edition who left its list after it went out and before the next
    send began (through the email's own link, not SendGrid's)."""
    started = conn.execute(
        sa.select(sa.func.min(batches.c.accepted_at)).where(batches.c.edition_id == edition_id)
    ).scalar()
    if started is None:
        return 0
    later: datetime | None = conn.execute(
        sa.select(sa.func.min(batches.c.created)).where(
            batches.c.created > started, batches.c.edition_id != edition_id
        )
    ).scalar()
    left = sa.and_(
        memberships.c.subscriber_id == send_recipients.c.subscriber_id,
        memberships.c.list_slug == send_recipients.c.list_slug,
    )
    query = (
        sa.select(sa.func.count())
        .select_from(send_recipients.join(memberships, left))
        .where(
            send_recipients.c.edition_id == edition_id,
            memberships.c.status == "unsubscribed",
            memberships.c.changed >= started,
        )
    )
    if later is not None:
        query = query.where(memberships.c.changed < later)
    return int(conn.execute(query).scalar() or 0)


def edition_numbers(conn: Connection, edition_id: str, *, tracking: bool) -> EditionNumbers:
    people = _people_by_kind(conn, edition_id)
    accepted = conn.execute(
        sa.select(sa.func.count())
        .select_from(send_recipients.join(batches, batches.c.id == send_recipients.c.batch_id))
        .where(send_recipients.c.edition_id == edition_id, batches.c.state == "accepted")
    ).scalar()
    return EditionNumbers(
        accepted=int(accepted or 0),
        delivered=people.get("delivered", 0),
        bounced=people.get("bounce", 0),
        spam_reports=people.get("spamreport", 0),
        unsubscribes=people.get("unsubscribe", 0)
        + people.get("group_unsubscribe", 0)
        + _web_unsubscribes(conn, edition_id),
        blocked=people.get("blocked", 0),
        deferred=people.get("deferred", 0),
        dropped=people.get("dropped", 0),
        opens=people.get("open", 0) if tracking else None,
        clicks=people.get("click", 0) if tracking else None,
    )
