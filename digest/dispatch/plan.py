"""Planning a send: the recipients snapshotted into the ledger, cut into batches by variant."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from digest.chunks import batched
from digest.dispatch.morning import morning_for
from digest.dispatch.variants import variant_chooser
from digest.lifecycle.states import Kind
from digest.models import Recipient
from digest.store import audience, ledger
from digest.store.editions import StoredEdition

if TYPE_CHECKING:
    from digest.context import App

CHUNK = 5000


@dataclass(slots=True)
class SendPlan:
    edition: StoredEdition
    lists: list[str]
    transport: str
    new_recipients: Counter[str] = field(default_factory=Counter)
    new_batches: int = 0
    written: bool = False


def plan_send(
    app: App,
    edition: StoredEdition,
    slugs: list[str],
    *,
    transport: str,
    now: datetime,
    dry_run: bool,
) -> SendPlan:
    """Snapshot who on ``slugs`` is new to this edition's ledger and cut their batches
    (nothing written on a dry run). Only the lifecycle's send calls this: it chose the
    lists from the edition's kind.

    Recipients stream from the database a few thousand at a time, so memory stays
    flat however long the list.
    """
    settings = app.settings
    with app.engine.begin() as conn:
        audience.sync_lists(conn, settings.lists)
        plan = SendPlan(edition, slugs, transport)
        cutter = _BatchCutter(conn, edition.id, transport, settings.delivery.batch_size, now)
        morning = morning_for(settings, edition.id) if edition.kind == Kind.WEEKLY else None
        ledger.lock_edition(conn, edition.id)
        first_send = not ledger.has_recipients(conn, edition.id)
        variant_of = variant_chooser(settings, conn, edition)
        for chunk in batched(audience.recipients_for(conn, slugs), CHUNK):
            known = (
                set()
                if first_send
                else ledger.known_recipients(conn, edition.id, [r.id for r in chunk])
            )
            rows = []
            for person in chunk:
                if person.id in known:
                    continue
                variant = variant_of(person)
                zone, at = morning.plan_for(person, now) if morning else (None, None)
                rows.append(cutter.place(person, variant, zone, at))
                plan.new_recipients[variant] += 1
            ledger.add_recipients(conn, rows)
        plan.new_batches = cutter.batches
        if dry_run:
            conn.rollback()
        else:
            plan.written = True
    return plan


class _BatchCutter:
    """Hands out batch ids: a new batch per variant and zone every ``size`` recipients."""

    def __init__(
        self, conn: Connection, edition_id: str, transport: str, size: int, now: datetime
    ) -> None:
        self.conn, self.edition_id, self.transport = conn, edition_id, transport
        self.size, self.now = size, now
        self.seq = ledger.next_seq(conn, edition_id)
        # (variant, zone) -> (batch id, recipients in it)
        self.open: dict[tuple[str, str | None], tuple[int, int]] = {}
        self.batches = 0

    def place(
        self, person: Recipient, variant: str, zone: str | None, deliver_at: datetime | None
    ) -> dict[str, Any]:
        key = (variant, zone)
        batch_id, filled = self.open.get(key, (0, self.size))
        if filled >= self.size:
            batch_id = ledger.add_batch(
                self.conn,
                self.edition_id,
                self.seq,
                variant,
                self.transport,
                self.now,
                zone=zone,
                deliver_at=deliver_at,
            )
            self.seq += 1
            self.batches += 1
            filled = 0
        self.open[key] = (batch_id, filled + 1)
        return {
            "edition_id": self.edition_id,
            "subscriber_id": person.id,
            "batch_id": batch_id,
            "email": person.email,
            "name": person.name,
            "format": person.format,
            "list_slug": person.lists[0] if person.lists else "",
        }
