"""The weekly job and staff approval: build, then send, or wait for a yes (or a deadline).

Every state change goes through the lifecycle's ``transition``, so it is stored with
who made it and when (`digest editions`). A weekly job that fails for any reason
records ``failed`` and tells the staff.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from digest.build import build
from digest.collect import collect
from digest.context import App
from digest.dispatch.copies import send_copies
from digest.dispatch.morning import fire_started_by
from digest.edition import week_id
from digest.errors import DigestError
from digest.lifecycle.checking import CheckReport, ensure_checked, with_check_notice
from digest.lifecycle.failures import notice_recipients, reason_of, report_failure
from digest.lifecycle.sending import SendResult, find_edition, refuse_when_held, send
from digest.lifecycle.states import UNFINISHED, HeldByChecks, State, state_of, transition
from digest.store import editions
from digest.urls import edition_path

log = logging.getLogger(__name__)
LOCK_FOR = timedelta(hours=6)
SCHEDULER = "scheduler"


def run_weekly(app: App, *, holder: str, stop: threading.Event | None = None) -> str:
    """Collect, build this week's edition, then send it or ask staff. Returns what happened.

    One process at a time per week (a lock in the database), so two schedulers on one
    database never build or send an edition twice. Any failure is recorded and mailed.
    """
    now = app.clock()
    # With local delivery the job starts before the send day's first morning anywhere,
    # which may be the day before: the week is the send day's.
    week = week_id(fire_started_by(app.settings, now) or now, app.settings)
    try:
        return _weekly(app, week, now, holder=holder, stop=stop)
    except Exception as exc:
        reason = reason_of(exc)
        if not isinstance(exc, DigestError):
            log.exception("edition %s: the weekly job failed", week)
        with app.engine.connect() as conn:
            recorded = state_of(conn, week) is State.FAILED  # by the send that failed
        if not recorded:
            report_failure(
                app, week, f"the weekly job failed: {reason}", who=SCHEDULER, notify=True
            )
        return f"{week}: failed: {reason}"


def _weekly(
    app: App, week: str, now: datetime, *, holder: str, stop: threading.Event | None
) -> str:
    with app.engine.begin() as conn:
        if not editions.take_lock(conn, f"weekly:{week}", holder, now=now, until=now + LOCK_FOR):
            return f"{week}: another process is running this week's job"
        state = state_of(conn, week)
    if state in UNFINISHED:  # cut short last time (a restart): resume
        send(app, week, who=SCHEDULER, stop=stop, notify=True)
        return f"{week}: resumed"
    if state not in (None, State.BUILT):
        return f"{week}: already {state.label}"
    collect(app.settings, app.engine, now)
    result = build(app.settings, app.engine, week=week, out=None, force=False, now=now)
    if result.edition is None:
        with app.engine.begin() as conn:
            transition(
                conn,
                week,
                State.SKIPPED,
                who=SCHEDULER,
                now=now,
                note="no new items since the last edition",
            )
        return f"{week}: nothing new, no edition"
    report = ensure_checked(app.settings, app.engine, week, now)
    if report.blocked:
        ask_approval(app, week, note="held by its checks: " + "; ".join(_held_because(report)))
        return f"{week}: held by its checks, staff asked to fix or override"
    if app.settings.edition.require_approval:
        return ask_approval(app, week)
    send(app, week, who=SCHEDULER, stop=stop, notify=True)
    return f"{week}: sent"


def _held_because(report: CheckReport) -> list[str]:
    return [f"{c.name}: {c.summary}" for c in report.blocking]


def ask_approval(app: App, edition_id: str, *, note: str = "") -> str:
    """Store the edition as awaiting approval and send the preview list (or, without one,
    the staff) a marked copy that starts with what its checks found."""
    now = app.clock()
    report = ensure_checked(app.settings, app.engine, edition_id, now)
    with app.engine.begin() as conn:
        transition(conn, edition_id, State.AWAITING, who=SCHEDULER, now=now, note=note)
        stored = find_edition(conn, edition_id)
    slug, staff = notice_recipients(app)
    page = app.urls.absolute(edition_path(edition_id))
    sent = send_copies(
        app,
        with_check_notice(stored.email, report, page),
        app.transport(now),
        staff,
        list_slug=slug,
        mark="[PREVIEW]",
        now=now,
        label=f"preview-{edition_id}",
    )
    return f"{edition_id}: awaiting approval; preview sent to {sent} on {slug or 'the staff'}"


def mark_approved(
    app: App, edition_id: str, *, who: str, note: str = "", override_reason: str = ""
) -> None:
    """The yes alone (the console then sends in the background). ``override_reason``:
    staff let an edition held by its checks go as it is, and say why (recorded)."""
    now = app.clock()
    with app.engine.connect() as conn:
        edition = find_edition(conn, edition_id)
    refuse_when_held(app, edition, who=who, override_reason=override_reason)
    with app.engine.begin() as conn:
        transition(conn, edition_id, State.APPROVED, who=who, now=now, note=note)


def approve(
    app: App,
    edition_id: str,
    *,
    who: str,
    stop: threading.Event | None = None,
    override_reason: str = "",
) -> SendResult:
    """Staff say yes: the edition goes out now."""
    mark_approved(app, edition_id, who=who, override_reason=override_reason)
    return send(app, edition_id, who=who, stop=stop)


def reject(app: App, edition_id: str, *, who: str, note: str = "") -> None:
    """Staff say no: the edition is never sent (rebuilt, it can be sent by hand)."""
    with app.engine.begin() as conn:
        find_edition(conn, edition_id)
        transition(conn, edition_id, State.REJECTED, who=who, now=app.clock(), note=note)


def auto_send_due(app: App, *, stop: threading.Event | None = None) -> list[str]:
    """Editions still awaiting approval past ``edition.auto_send_after`` go out."""
    after = parse_duration(app.settings.edition.auto_send_after)
    if after is None:
        return []
    now = app.clock()
    with app.engine.connect() as conn:
        due = [
            eid
            for eid, since in editions.in_state_since(conn, State.AWAITING)
            if since + after <= now
        ]
    for edition_id in due:
        who = "auto_send_after"
        try:
            mark_approved(
                app,
                edition_id,
                who=who,
                note=f"no answer within {app.settings.edition.auto_send_after}",
            )
        except HeldByChecks as exc:  # staff must fix it or override it first
            log.warning("edition %s: not sent automatically: %s", edition_id, exc)
            continue
        try:
            send(app, edition_id, who=who, stop=stop, notify=True)
        except Exception as exc:  # recorded and mailed by send; the next one still goes
            log.error("edition %s: the automatic send failed: %s", edition_id, exc)
    return due


def record_missed(app: App, due: datetime) -> None:
    """The scheduler was down when the weekly job was due, and the grace period has passed."""
    week = week_id(due, app.settings)
    note = (
        f"due {due.isoformat(timespec='minutes')}, but digest serve was not running "
        f"within {app.settings.schedule.grace_minutes} minutes: run 'digest build' and "
        "'digest send' by hand"
    )
    with app.engine.begin() as conn:
        if state_of(conn, week) in (None, State.BUILT):
            transition(conn, week, State.MISSED, who=SCHEDULER, now=app.clock(), note=note)
    log.warning("edition %s: %s", week, note)


def parse_duration(text: str | None) -> timedelta | None:
    if not text:
        return None
    unit = {"m": "minutes", "h": "hours", "d": "days"}[text[-1]]
    return timedelta(**{unit: int(text[:-1])})
