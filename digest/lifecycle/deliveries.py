"""An edition's scheduled mail: booked at the provider under one id before its batches
go (SendGrid's ``batch_id``), shown while it waits, and cancelled as one.

A weekly edition planned by reader's morning (:mod:`digest.dispatch.morning`) is handed
to SendGrid at once, each batch with its ``send_at``; SendGrid holds it until then. So
"sent" means accepted, and what is still to be delivered is read from the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from digest.context import App
from digest.dispatch.batch import Transport
from digest.errors import DeliveryError
from digest.lifecycle.states import State, locked_state, transition
from digest.store import editions, ledger, scheduled


@dataclass(frozen=True, slots=True)
class Waiting:
    """One batch still to be delivered."""

    batch: int
    zone: str | None
    deliver_at: datetime | None  # None: at the next send
    state: str
    recipients: int

    def when(self) -> str:
        """The delivery time as its readers see it: ``Thu 3 Dec 07:00 (Pacific/Auckland)``."""
        if self.deliver_at is None:
            return "at the next send"
        local = self.deliver_at.astimezone(ZoneInfo(self.zone)) if self.zone else self.deliver_at
        return f"{local:%a %-d %b %H:%M} ({self.zone or 'UTC'})"

    def as_json(self) -> dict[str, object]:
        return {
            "batch": str(self.batch),
            "zone": self.zone,
            "deliver_at": self.deliver_at.isoformat() if self.deliver_at else None,
            "state": self.state,
            "recipients": self.recipients,
        }


def waiting(conn: Connection, edition_id: str, now: datetime) -> list[Waiting]:
    """What of the edition is still to be delivered, in delivery order."""
    return [
        Waiting(row.seq, row.zone, row.deliver_at, row.state, int(row.recipients))
        for row in ledger.later(conn, edition_id, now)
    ]


def scheduled_later(conn: Connection, edition_id: str, now: datetime) -> list[Waiting]:
    """The batches the provider holds until their time (what a cancel can still stop)."""
    return [w for w in waiting(conn, edition_id, now) if w.deliver_at and w.deliver_at > now]


def book_schedule(app: App, edition_id: str, transport: Transport) -> None:
    """Once per edition, before its batches go: when the ledger holds mail for later, an
    id from the provider to send it under, so it can be cancelled as one."""
    now = app.clock()
    with app.engine.connect() as conn:
        if scheduled.status_of(conn, edition_id) is not None:
            return
        if not ledger.has_delivery_times(conn, edition_id, now):
            return  # cheap: no count of a big ledger on every send
    schedule = transport.new_schedule()
    with app.engine.begin() as conn:
        editions.lock_row(conn, edition_id)
        if scheduled.status_of(conn, edition_id) is None:  # another sender may have booked
            scheduled.record(conn, edition_id, transport=transport.name, schedule=schedule, now=now)


def cancel_scheduled(app: App, edition_id: str, *, who: str, note: str = "") -> str:
    """A sent (or sending) edition's mail not delivered yet never is: the provider drops
    its scheduled send, the ledger's later batches are cancelled, and so is the edition.
    Returns what was stopped."""
    now = app.clock()
    with app.engine.connect() as conn:
        schedule = scheduled.schedule_of(conn, edition_id)
        later = scheduled_later(conn, edition_id, now)
    if schedule is None or not later:
        raise DeliveryError(
            f"edition {edition_id} has been delivered already (nothing of it waits for a "
            "later time): it cannot be cancelled"
        )
    app.transport(now).cancel_schedule(schedule)  # first: if SendGrid refuses, nothing changed
    with app.engine.begin() as conn:
        if locked_state(conn, edition_id) not in (State.SENT, State.SENDING):
            raise DeliveryError(f"edition {edition_id} changed meanwhile: see 'digest editions'")
        stopped = sum(w.recipients for w in waiting(conn, edition_id, now))
        ledger.cancel_later(conn, edition_id, now)
        scheduled.mark_cancelled(conn, edition_id, now)
        had = ledger.summary(conn, edition_id)["recipients"]["accepted"]
        what = f"{stopped} recipient(s) will not get it; {had} had it already"
        transition(
            conn, edition_id, State.CANCELLED, who=who, now=now, note=f"{what}. {note}".strip()
        )
    return what
