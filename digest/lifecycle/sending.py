"""The one way anything is delivered: refresh suppressions, mark abandoned batches, plan
the edition's audience, record sending, deliver, then sent or failed.

The command line, the scheduler, the console and the resume at start all call
:func:`send`. Asking "send to N people?" is the edge's job: :func:`preview_send` gives
the numbers without writing anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from digest.context import App
from digest.dispatch.batch import Outcome, Transport
from digest.dispatch.outbox import OutboxTransport
from digest.dispatch.plan import SendPlan, plan_send
from digest.dispatch.run import RunReport, mark_abandoned
from digest.dispatch.send import WorkersAhead, deliver
from digest.dispatch.suppressions import refresh_before_send
from digest.errors import DeliveryError
from digest.lifecycle.checking import ensure_checked, override, refusal_of, report_of
from digest.lifecycle.deliveries import book_schedule
from digest.lifecycle.failures import reason_of, report_failure
from digest.lifecycle.states import (
    CHECKED_BEFORE,
    SENDABLE,
    UNFINISHED,
    HeldByChecks,
    Kind,
    State,
    audience_of,
    locked_state,
    state_of,
    transition,
)
from digest.store import editions, ledger
from digest.store.editions import StoredEdition

log = logging.getLogger(__name__)
NOT_DONE = ("pending", "in_flight", "failed", "uncertain")


@dataclass(slots=True)
class SendEvents:
    """How a send talks to whoever started it (all optional)."""

    warn: Callable[[str], None] = log.warning
    note: Callable[[str], None] = log.info
    on_batch: Callable[[int, Outcome, int], None] | None = None
    on_plan: Callable[[SendPlan], object] | None = None  # what was planned (and written)
    on_start: Callable[[int], None] | None = None  # recipients left to send


@dataclass(slots=True)
class SendResult:
    plan: SendPlan
    report: RunReport = field(default_factory=RunReport)
    people: dict[str, int] = field(default_factory=dict)
    state: State | None = None
    outbox: Path | None = None

    @property
    def edition_id(self) -> str:
        return self.plan.edition.id


def find_edition(conn: Connection, edition_id: str | None) -> StoredEdition:
    """The named edition (or alert), or the latest weekly one; an error saying what to build."""
    edition = editions.get_edition(conn, edition_id, latest_of=Kind.WEEKLY)
    if edition is not None:
        return edition
    if edition_id:
        raise DeliveryError(
            f"edition {edition_id!r} has not been built: run "
            f"'digest build --week {edition_id}' first"
        )
    raise DeliveryError("no edition has been built yet: run 'digest build' first")


def _sendable(conn: Connection, edition_id: str | None, approving: bool = False) -> StoredEdition:
    edition = find_edition(conn, edition_id)
    state = State(edition.state)
    if approving and state is State.AWAITING:
        return edition
    if state is not State.SENDING and state not in SENDABLE:
        hint = {
            State.AWAITING: f"approve it first: 'digest approve {edition.id}'",
            State.SCHEDULED: f"it goes at its time, or cancel it: 'digest cancel {edition.id}'",
        }.get(state, "see 'digest editions'")
        raise DeliveryError(f"edition {edition.id} is {state.label}, so it cannot be sent: {hint}")
    return edition


def refuse_when_held(
    app: App, edition: StoredEdition, *, who: str = "", override_reason: str = ""
) -> None:
    """Before the first yes (an approval or a send), the checks run if the edition changed
    since they last did, and a blocking one refuses it, unless staff override it now
    with a reason (``who`` and why go in its history)."""
    if State(edition.state) not in CHECKED_BEFORE:
        return
    now = app.clock()
    report = ensure_checked(app.settings, app.engine, edition.id, now)
    if report.blocked and override_reason:
        with app.engine.begin() as conn:
            override(conn, edition.id, who=who, reason=override_reason, now=now)
            report = report_of(conn, edition.id)
    if report.blocked:
        raise HeldByChecks(refusal_of(report))


def edition_to_send(app: App, edition_id: str | None) -> str:
    """The id of the edition a send would take (the latest weekly one by default), refused
    at once when its state does not allow a send."""
    with app.engine.connect() as conn:
        return _sendable(conn, edition_id).id


def lists_for(app: App, edition: StoredEdition, list_slug: str | None) -> list[str]:
    """The edition's audience: the given list (if its kind fits), or every list of its kind;
    a welcome goes to its own list and no other."""
    kind = Kind(edition.kind)
    if kind is Kind.WELCOME and list_slug and list_slug != edition.list_slug:
        raise DeliveryError(
            f"{edition.id} is the welcome of list {edition.list_slug!r}: it goes to that list "
            "only; leave --list out"
        )
    return audience_of(app.settings, kind, list_slug or edition.list_slug)


def preview_send(
    app: App, edition_id: str | None, list_slug: str | None = None, *, approving: bool = False
) -> SendPlan:
    """Who a send would reach now (a dry-run plan): nothing is written. ``approving``: of
    an edition awaiting approval, before the yes."""
    with app.engine.connect() as conn:
        edition = _sendable(conn, edition_id, approving)
    slugs = lists_for(app, edition, list_slug)
    return plan_send(
        app, edition, slugs, transport=app.transport().name, now=app.clock(), dry_run=True
    )


def begin_send(app: App, edition_id: str, *, who: str) -> None:
    """Record ``sending`` before the work starts, so a page that answers at once shows it;
    what would stop the send (its state, its checks, its lists) is refused here, not later."""
    with app.engine.connect() as conn:
        first = _sendable(conn, edition_id)
    refuse_when_held(app, first)
    with app.engine.begin() as conn:
        edition = _sendable(conn, edition_id)
        if edition.state == State.SENT:
            raise DeliveryError(
                f"edition {edition.id} is sent already: to reach people who joined since, "
                f"run 'digest send --edition {edition.id}'"
            )
        lists_for(app, edition, None)
        _mark_sending(conn, edition.id, who=who, now=app.clock())


def send(
    app: App,
    edition_id: str | None,
    *,
    who: str,
    list_slug: str | None = None,
    stop: threading.Event | None = None,
    events: SendEvents | None = None,
    resend_uncertain: bool = False,
    notify: bool = False,
    add_new: bool = True,
    override_reason: str = "",
) -> SendResult:
    """Deliver an edition to its audience; run again to resume (nobody gets it twice).

    ``notify``: a failure is also mailed to the preview list or the staff (sends nobody
    is watching: the scheduler's and the console's). ``add_new`` False sends only who
    the ledger already holds (the resume after a restart). ``override_reason``: send an
    edition its checks hold, and why (see :func:`refuse_when_held`).
    """
    events = events or SendEvents()
    now = app.clock()
    with app.engine.connect() as conn:
        edition = _sendable(conn, edition_id)
    refuse_when_held(app, edition, who=who, override_reason=override_reason)
    slugs = lists_for(app, edition, list_slug)
    transport = app.transport(now)
    # A first send's audience is counted for its workers, started while it plans; a sent
    # edition's newcomers are few, a resumed one's are in the ledger already.
    counted = slugs if add_new and edition.state != State.SENT else []
    try:
        with WorkersAhead(app, edition.id, counted, transport.name, now) as ahead:
            result = _plan(app, edition, slugs, transport, events, add_new=add_new)
            book_schedule(app, edition.id, transport)
            if edition.state == State.SENT:  # sent before: only someone new (or retried) goes
                people = _people(app, edition.id)
                if not _anything_to_send(people, result.plan, resend_uncertain):
                    result.people, result.state = people, State.SENT
                    return result
            with app.engine.begin() as conn:
                _mark_sending(conn, edition.id, who=who, now=now)
            if events.on_start is not None:
                events.on_start(_people(app, edition.id)["pending"])
            result.report = deliver(
                app,
                result.plan,
                transport,
                stop=stop,
                resend_uncertain=resend_uncertain,
                on_batch=events.on_batch,
                ahead=ahead,
            )
    except Exception as exc:
        report_failure(app, edition.id, reason_of(exc), who=who, notify=notify)
        raise
    return _finish(app, result, who=who, notify=notify)


def _plan(
    app: App,
    edition: StoredEdition,
    slugs: list[str],
    transport: Transport,
    events: SendEvents,
    *,
    add_new: bool,
) -> SendResult:
    """SendGrid's suppressions pulled in, batches left by a dead process marked uncertain,
    then the newcomers snapshotted into the ledger."""
    now = app.clock()
    if added := refresh_before_send(transport, app.engine, now, warn=events.warn):
        events.note(f"{added} address(es) newly suppressed from SendGrid's lists")
    mark_abandoned(app.engine, edition.id, now)
    plan = plan_send(app, edition, slugs, transport=transport.name, now=now, dry_run=not add_new)
    if events.on_plan is not None:
        events.on_plan(plan)
    return SendResult(plan, outbox=_outbox(transport, edition.id))


def _mark_sending(conn: Connection, edition_id: str, *, who: str, now: datetime) -> None:
    """Record ``sending``, unless it is so already (a resume, or the console marked it)."""
    if locked_state(conn, edition_id) is not State.SENDING:
        transition(conn, edition_id, State.SENDING, who=who, now=now)


def reach_now(app: App, plan: SendPlan) -> int:
    """How many people a send of the plan reaches now: the ledger's pending, plus the
    newcomers a dry-run plan found (a written plan's are pending already)."""
    pending = _people(app, plan.edition.id)["pending"]
    return pending + (0 if plan.written else sum(plan.new_recipients.values()))


def _anything_to_send(people: dict[str, int], plan: SendPlan, resend_uncertain: bool) -> bool:
    waiting = people["pending"] + people["failed"] + people["in_flight"]
    if resend_uncertain:
        waiting += people["uncertain"]
    return bool(waiting or sum(plan.new_recipients.values()))


def _finish(app: App, result: SendResult, *, who: str, notify: bool) -> SendResult:
    """Sent when everyone was accepted; failed (with why) when something is left that a
    rerun must deal with; still sending when stopped on purpose or another sender is at it."""
    edition_id = result.edition_id
    people = result.people = _people(app, edition_id)
    report = result.report
    now = app.clock()
    log.info(
        "edition %s: %s accepted, %s pending, %s failed, %s uncertain",
        edition_id,
        people["accepted"],
        people["pending"],
        people["failed"],
        people["uncertain"],
    )
    if report.stopped_by:
        report_failure(app, edition_id, report.stopped_by, who=who, notify=notify)
    elif not any(people[k] for k in NOT_DONE):
        with app.engine.begin() as conn:
            # Another sender of the same edition may have finished it first.
            if locked_state(conn, edition_id) is State.SENDING:
                note = f"{people['accepted']} accepted"
                transition(conn, edition_id, State.SENT, who=who, now=now, note=note)
    elif not report.interrupted and (people["failed"] or people["uncertain"]):
        report_failure(app, edition_id, left_over(edition_id, people), who=who, notify=notify)
    with app.engine.connect() as conn:
        result.state = state_of(conn, edition_id)
    return result


def left_over(edition_id: str, people: dict[str, int]) -> str:
    """What a send left undone, and the command that deals with it."""
    parts = []
    if people["failed"]:
        parts.append(
            f"{people['failed']} recipient(s) failed: see 'digest status {edition_id}' for "
            f"the reasons, then run 'digest send --edition {edition_id}' again"
        )
    if people["uncertain"]:
        parts.append(
            f"{people['uncertain']} recipient(s) are in uncertain batches (SendGrid may have "
            f"taken them): see 'digest status {edition_id}'; send them again only with "
            f"'digest send --edition {edition_id} --resend-uncertain'"
        )
    return "; ".join(parts)


def _people(app: App, edition_id: str) -> dict[str, int]:
    with app.engine.connect() as conn:
        people: dict[str, int] = ledger.summary(conn, edition_id)["recipients"]
    return people


def _outbox(transport: Transport, edition_id: str) -> Path | None:
    return transport.folder(edition_id) if isinstance(transport, OutboxTransport) else None


def resume_unfinished(app: App, *, stop: threading.Event | None = None) -> list[str]:
    """At start: editions and alerts left approved or sending (a SIGTERM, a crash) send
    their pending batches; nobody new is added to one that had started."""
    with app.engine.connect() as conn:
        unfinished = editions.ids_in_state(conn, [s.value for s in UNFINISHED])
    for edition_id in unfinished:
        with app.engine.connect() as conn:
            started = state_of(conn, edition_id) is State.SENDING
        try:
            send(app, edition_id, who="scheduler", stop=stop, notify=True, add_new=not started)
        except Exception as exc:  # one edition's trouble never keeps the next from resuming
            log.error("edition %s: the resumed send failed: %s", edition_id, reason_of(exc))
    return unfinished
