"""Planning a send: the recipients snapshotted into the ledger, cut into batches by variant."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from digest.dispatch.morning import morning_for
from digest.dispatch.variants import variant_chooser
from digest.lifecycle.states import Kind
from digest.models import Recipient
from digest.store import audience, editions, ledger, planning
from digest.store.editions import StoredEdition

if TYPE_CHECKING:
    from digest.context import App


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

    The newcomers are counted by what decides their batch (format, profile, sections,
    timezone); each such group gets its variant and zone here, then the database writes
    every row into its batch in one statement (:mod:`digest.store.planning`), so memory
    stays flat and the time small however long the list.
    """
    settings = app.settings
    size = settings.delivery.batch_size
    with planning.planning_connection(app.engine) as conn:
        audience.sync_lists(conn, settings.lists)
        plan = SendPlan(edition, slugs, transport)
        editions.lock_row(conn, edition.id)
        groups = planning.newcomer_groups(conn, edition.id, slugs)
        buckets = _buckets(app, conn, edition, groups, now)
        for bucket in buckets:
            plan.new_recipients[bucket.variant] += bucket.count
            plan.new_batches += -(-bucket.count // size)
        if not dry_run and buckets:
            placed = _add_batches(conn, edition.id, transport, buckets, size, now)
            planning.write_newcomers(conn, edition.id, placed, size)
        if dry_run:
            conn.rollback()
        else:
            plan.written = True
    return plan


@dataclass(slots=True)
class _Bucket:
    """Newcomers of one variant and one zone: they share batches."""

    variant: str
    zone: str | None
    deliver_at: datetime | None
    groups: list[planning.Group] = field(default_factory=list)
    count: int = 0


def _buckets(
    app: App, conn: Connection, edition: StoredEdition, groups: list[planning.Group], now: datetime
) -> list[_Bucket]:
    """Each group's variant and zone (and delivery time), groups of the same joined; in
    the order of their first subscriber, so the earliest to join is in batch 1."""
    variant_of = variant_chooser(app.settings, conn, edition)
    morning = morning_for(app.settings, edition.id) if edition.kind == Kind.WEEKLY else None
    found: dict[tuple[str, str | None], _Bucket] = {}
    for group in groups:
        like = Recipient(
            0,
            "",
            "",
            group.format,
            (),
            group.profile,
            group.timezone,
            audience.chosen_sections(group.sections),
        )
        variant = variant_of(like)
        zone, at = morning.plan_for(like, now) if morning else (None, None)
        bucket = found.setdefault((variant, zone), _Bucket(variant, zone, at))
        bucket.groups.append(group)
        bucket.count += group.count
    return list(found.values())


def _add_batches(
    conn: Connection,
    edition_id: str,
    transport: str,
    buckets: list[_Bucket],
    size: int,
    now: datetime,
) -> list[planning.Placed]:
    """Each bucket's batches, numbered on from the edition's last; where its groups go."""
    seq = ledger.next_seq(conn, edition_id)
    placed = []
    for number, bucket in enumerate(buckets):
        placed += [planning.Placed(group, number, seq) for group in bucket.groups]
        count = -(-bucket.count // size)
        ledger.add_batches(
            conn,
            edition_id,
            seq,
            count,
            bucket.variant,
            transport,
            now,
            zone=bucket.zone,
            deliver_at=bucket.deliver_at,
        )
        seq += count
    return placed
