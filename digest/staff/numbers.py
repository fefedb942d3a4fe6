"""What happened to an edition after it left: SendGrid's events and the unsubscribes it led to.

Opens and clicks are counted only when ``delivery.tracking`` is on; otherwise nothing tracks
readers and the console does not show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from digest.store import delivery


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


def _web_unsubscribes(conn: Connection, edition_id: str) -> int:
    """Recipients of this edition who left its list after it went out and before the next
    send began (through the email's own link, not SendGrid's)."""
    started = delivery.first_accepted(conn, edition_id)
    if started is None:
        return 0
    later = delivery.next_send_after(conn, edition_id, started)
    return delivery.unsubscribed_recipients(conn, edition_id, started, later)


def edition_numbers(conn: Connection, edition_id: str, *, tracking: bool) -> EditionNumbers:
    people = delivery.people_by_kind(conn, edition_id)
    accepted = delivery.accepted_recipients(conn, edition_id)
    return EditionNumbers(
        accepted=accepted,
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
