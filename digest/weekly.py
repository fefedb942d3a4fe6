"""The weekly job and staff approval: build, then send, or wait for a yes (or a deadline).

Every state change of an edition is stored with who made it and when
(`digest editions`).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from digest.alert import is_alert
from digest.build import build
from digest.collect import collect
from digest.config import Secrets, Settings
from digest.dispatch.copies import send_copies
from digest.dispatch.plan import plan_send
from digest.dispatch.run import RunReport
from digest.dispatch.send import choose_transport, deliver
from digest.dispatch.suppressions import refresh_before_send
from digest.edition import week_id
from digest.errors import DeliveryError
from digest.store import audience, editions, ledger

log = logging.getLogger(__name__)
AWAITING, APPROVED, REJECTED = "awaiting_approval", "approved", "rejected"
SENDING, SENT, SKIPPED, MISSED = "sending", "sent", "skipped", "missed"
LOCK_FOR = timedelta(hours=6)


def run_weekly(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    *,
    now: datetime,
    holder: str,
    stop: threading.Event | None = None,
) -> str:
    """Collect, build this week's edition, then send it or ask staff. Returns what happened.

    One process at a time per week (a lock in the database), so two schedulers on one
    database never build or send an edition twice.
    """
    week = week_id(now, settings)
    with engine.begin() as conn:
        if not editions.take_lock(conn, f"weekly:{week}", holder, now=now, until=now + LOCK_FOR):
            return f"{week}: another process is running this week's job"
        state = editions.state_of(conn, week)
    if state in (APPROVED, SENDING):  # cut short last time (a restart, SIGTERM): resume
        send_now(settings, engine, secrets, week, who="scheduler", now=now, stop=stop)
        return f"{week}: resumed"
    if state not in (None, "built"):
        return f"{week}: already {state}"
    collect(settings, engine, now)
    result = build(settings, engine, week=week, out=None, force=False, now=now)
    if result.edition is None:
        with engine.begin() as conn:
            editions.set_state(
                conn,
                week,
                SKIPPED,
                who="scheduler",
                now=now,
                note="no new items since the last edition",
            )
        return f"{week}: nothing new, no edition"
    if settings.edition.require_approval:
        return ask_approval(settings, engine, secrets, week, now=now)
    send_now(settings, engine, secrets, week, who="scheduler", now=now, stop=stop)
    return f"{week}: sent"


def ask_approval(
    settings: Settings, engine: Engine, secrets: Secrets, edition_id: str, *, now: datetime
) -> str:
    """Store the edition as awaiting approval and send the preview list a marked copy."""
    with engine.begin() as conn:
        editions.set_state(conn, edition_id, AWAITING, who="scheduler", now=now)
        stored = editions.get_edition(conn, edition_id)
        slug = settings.list_named(settings.edition.preview_list).slug
        audience.sync_lists(conn, settings.lists)
        staff = list(audience.recipients_for(conn, [slug]))
    assert stored is not None
    sent = send_copies(
        settings,
        secrets,
        stored.email,
        choose_transport(settings, secrets, now),
        staff,
        list_slug=slug,
        mark="[PREVIEW]",
        now=now,
        label=f"preview-{edition_id}",
    )
    return f"{edition_id}: awaiting approval; preview sent to {sent} on {slug}"


def approve(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    edition_id: str,
    *,
    who: str,
    now: datetime,
    stop: threading.Event | None = None,
) -> RunReport:
    """Staff say yes: the edition goes out now."""
    mark_approved(engine, edition_id, who=who, now=now)
    return send_now(settings, engine, secrets, edition_id, who=who, now=now, stop=stop)


def mark_approved(engine: Engine, edition_id: str, *, who: str, now: datetime) -> None:
    """The yes alone (the console sends in the background after it)."""
    _require_state(engine, edition_id, {AWAITING})
    with engine.begin() as conn:
        editions.set_state(conn, edition_id, APPROVED, who=who, now=now)


def reject(engine: Engine, edition_id: str, *, who: str, now: datetime, note: str = "") -> None:
    """Staff say no: the edition is never sent (it can be rebuilt and sent by hand)."""
    _require_state(engine, edition_id, {AWAITING, "built"})
    with engine.begin() as conn:
        editions.set_state(conn, edition_id, REJECTED, who=who, now=now, note=note)


def auto_send_due(
    settings: Settings, engine: Engine, secrets: Secrets, *, now: datetime
) -> list[str]:
    """Editions still awaiting approval past ``edition.auto_send_after`` go out."""
    after = parse_duration(settings.edition.auto_send_after)
    if after is None:
        return []
    with engine.connect() as conn:
        due = [eid for eid, since in editions.awaiting_since(conn) if since + after <= now]
    for edition_id in due:
        with engine.begin() as conn:
            editions.set_state(
                conn,
                edition_id,
                APPROVED,
                who="auto_send_after",
                now=now,
                note=f"no answer within {settings.edition.auto_send_after}",
            )
        send_now(settings, engine, secrets, edition_id, who="auto_send_after", now=now)
    return due


def send_now(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    edition_id: str,
    *,
    who: str,
    now: datetime,
    stop: threading.Event | None = None,
) -> RunReport:
    """Plan and deliver one edition to the digest and print lists, recording sending and sent."""
    transport = choose_transport(settings, secrets, now)
    refresh_before_send(transport, engine, now)
    kinds = [k for k in ("digest", "print") if any(x.kind == k for x in settings.lists)]
    if not kinds:
        raise DeliveryError("no list of kind 'digest' or 'print' in config.toml: add one")
    plans = [
        plan_send(
            settings,
            engine,
            edition_id=edition_id,
            list_slug=None,
            transport=transport.name,
            now=now,
            dry_run=False,
            kind=kind,
        )
        for kind in kinds
    ]
    with engine.begin() as conn:
        editions.set_state(conn, edition_id, SENDING, who=who, now=now)
    # One run delivers every pending batch of the edition, whichever plan made it.
    report = deliver(settings, engine, secrets, plans[0], transport, clock=lambda: now, stop=stop)
    people = mark_sent_if_done(engine, edition_id, who=who, now=now)
    log.info(
        "edition %s: %s accepted, %s pending, %s failed, %s uncertain",
        edition_id,
        people["accepted"],
        people["pending"],
        people["failed"],
        people["uncertain"],
    )
    return report


def record_missed(engine: Engine, settings: Settings, due: datetime, now: datetime) -> None:
    """The scheduler was down when the weekly job was due, and the grace period has passed."""
    week = week_id(due, settings)
    with engine.begin() as conn:
        editions.set_state(
            conn,
            week,
            MISSED,
            who="scheduler",
            now=now,
            note=(
                f"due {due.isoformat(timespec='minutes')}, but digest serve was not running "
                f"within {settings.schedule.grace_minutes} minutes: run 'digest build' and "
                "'digest send' by hand"
            ),
        )


def parse_duration(text: str | None) -> timedelta | None:
    if not text:
        return None
    unit = {"m": "minutes", "h": "hours", "d": "days"}[text[-1]]
    return timedelta(**{unit: int(text[:-1])})


def _require_state(engine: Engine, edition_id: str, allowed: set[str]) -> None:
    with engine.connect() as conn:
        state = editions.state_of(conn, edition_id)
    if state is None:
        raise DeliveryError(f"no edition {edition_id!r}: see 'digest editions'")
    if state not in allowed:
        raise DeliveryError(
            f"edition {edition_id} is {state.replace('_', ' ')}, not awaiting "
            "approval: see 'digest editions'"
        )


def send_alert(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    alert: str,
    list_slug: str | None,
    *,
    now: datetime,
    stop: threading.Event | None = None,
    who: str = "scheduler",
) -> RunReport:
    """Send a stored alert to its list (or every alerts list), recording sending and sent."""
    transport = choose_transport(settings, secrets, now)
    refresh_before_send(transport, engine, now)
    plan = plan_send(
        settings,
        engine,
        edition_id=alert,
        list_slug=list_slug,
        transport=transport.name,
        now=now,
        dry_run=False,
        kind="alerts",
    )
    with engine.begin() as conn:
        editions.set_state(conn, alert, SENDING, who=who, now=now)
    report = deliver(settings, engine, secrets, plan, transport, clock=lambda: now, stop=stop)
    mark_sent_if_done(engine, alert, who=who, now=now)
    return report


def parse_at(text: str, settings: Settings, now: datetime) -> datetime:
    """``--at``: an ISO date and time, or HH:MM (the next such time), in the organisation's zone."""
    zone = settings.organisation.zone
    local_now = now.astimezone(zone)
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(x) for x in text.split(":"))
            at = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if at <= local_now:
                at += timedelta(days=1)
        else:
            at = datetime.fromisoformat(text)
            at = at if at.tzinfo else at.replace(tzinfo=zone)
    except ValueError:
        raise DeliveryError(
            f"--at {text!r} is not a time: write 18:30 or 2026-12-01T18:30"
        ) from None
    if at <= now:
        raise DeliveryError(f"--at {text} is in the past: leave --at out to send now")
    return at


def resume_unfinished(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    *,
    now: datetime,
    stop: threading.Event | None = None,
) -> list[str]:
    """At start: editions and alerts left sending (a SIGTERM, a crash) send their pending
    batches; nobody new is added to them."""
    with engine.connect() as conn:
        unfinished = [r.id for r in editions.listing(conn) if r.state in (APPROVED, SENDING)]
    transport = choose_transport(settings, secrets, now)
    for edition_id in unfinished:
        kind = "alerts" if is_alert(edition_id) else "digest"
        plan = plan_send(
            settings,
            engine,
            edition_id=edition_id,
            list_slug=None,
            transport=transport.name,
            now=now,
            dry_run=True,
            kind=kind,
        )
        deliver(settings, engine, secrets, plan, transport, clock=lambda: now, stop=stop)
        mark_sent_if_done(engine, edition_id, who="scheduler", now=now, note="resumed; ")
    return unfinished


def mark_sent_if_done(
    engine: Engine, edition_id: str, *, who: str, now: datetime, note: str = ""
) -> dict[str, int]:
    """Record the edition as sent once every recipient is accepted; its recipient counts."""
    with engine.begin() as conn:
        people: dict[str, int] = ledger.summary(conn, edition_id)["recipients"]
        if not any(people[k] for k in ("pending", "in_flight", "failed", "uncertain")):
            editions.set_state(
                conn,
                edition_id,
                SENT,
                who=who,
                now=now,
                note=f"{note}{people['accepted']} accepted",
            )
    return people
