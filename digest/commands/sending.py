"""What `digest send`, `digest alert` and `digest cancel` print and ask; the lifecycle does
the work."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from digest.alert import read_body
from digest.commands.common import stop_on_signals, warn, who_am_i
from digest.commands.content import show_checks
from digest.context import App
from digest.dispatch.batch import Outcome
from digest.dispatch.plan import SendPlan
from digest.errors import DeliveryError
from digest.lifecycle.alerts import cancel, draft_alert, parse_at, send_alert_test, store_alert
from digest.lifecycle.checking import refusal_of, report_of, run_checks
from digest.lifecycle.sending import (
    SendEvents,
    SendResult,
    edition_to_send,
    left_over,
    preview_send,
    reach_now,
    send,
)
from digest.lifecycle.states import State
from digest.store import ledger


def _show_plan(app: App, plan: SendPlan) -> int:
    """The plan's lines; how many recipients a send would reach now."""
    formats = ", ".join(f"{n} {fmt}" for fmt, n in sorted(plan.new_recipients.items()))
    with app.engine.connect() as conn:
        state = ledger.summary(conn, plan.edition.id)
    waiting = reach_now(app, plan)
    typer.echo(f"edition {plan.edition.id}: {plan.edition.subject}")
    typer.echo(f"  lists: {', '.join(plan.lists)}; transport: {plan.transport}")
    typer.echo(
        f"  new recipients: {sum(plan.new_recipients.values())} ({formats or 'none'}) "
        f"in {plan.new_batches} new batch(es)"
    )
    typer.echo(
        f"  to send now: {waiting} recipient(s); already accepted: "
        f"{state['recipients']['accepted']}"
    )
    if state["recipients"]["uncertain"]:
        warn(
            f"{state['recipients']['uncertain']} recipient(s) in uncertain batches are not "
            "sent again unless you pass --resend-uncertain (see digest status)"
        )
    return waiting


def send_command(
    app: App,
    *,
    list_slug: str | None,
    edition_id: str | None,
    dry_run: bool,
    yes: bool,
    resend_uncertain: bool = False,
    override_reason: str = "",
) -> None:
    edition_id = edition_to_send(app, edition_id)
    ask = not (yes or dry_run) and sys.stdin.isatty()
    if dry_run or ask:
        planned = preview_send(app, edition_id, list_slug)
        waiting = _show_plan(app, planned)
        if dry_run:
            with app.engine.connect() as conn:
                report = report_of(conn, edition_id)
            if report.blocked:
                warn(refusal_of(report))
            typer.echo("dry run: nothing sent")
            return
        typer.confirm(f"Send {edition_id} to {waiting} recipient(s) now?", abort=True)
    with stop_on_signals() as stop, _progress(edition_id) as events:
        if not ask:  # the plan shown is the one written (another sender may have been first)
            events.on_plan = partial(_show_plan, app)
        result = send(
            app,
            edition_id,
            who=who_am_i(),
            list_slug=list_slug,
            stop=stop,
            events=events,
            resend_uncertain=resend_uncertain,
            override_reason=override_reason,
        )
    _finish_send(result)


@contextmanager
def _progress(edition_id: str) -> Iterator[SendEvents]:
    """A progress bar on a terminal, a log line per batch otherwise."""
    events = SendEvents(warn=warn, note=lambda line: typer.echo(f"  {line}"))
    if not sys.stderr.isatty():

        def log_batch(seq: int, outcome: Outcome, size: int) -> None:
            detail = f": {outcome.reason}" if outcome.reason else ""
            typer.echo(
                f"edition {edition_id} batch {seq} ({size} recipients): {outcome.kind}{detail}",
                err=True,
            )

        events.on_batch = log_batch
        yield events
        return
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task(f"sending {edition_id}", total=None)
        events.on_start = lambda total: progress.update(task, total=total)
        events.on_batch = lambda _seq, _outcome, size: progress.advance(task, size)
        yield events


def _finish_send(result: SendResult) -> None:
    people, edition_id = result.people, result.edition_id
    typer.echo(
        f"edition {edition_id}: {people['accepted']} accepted, {people['pending']} "
        f"pending, {people['in_flight']} in flight, {people['failed']} failed, "
        f"{people['uncertain']} uncertain"
    )
    if people["in_flight"]:
        typer.echo(
            f"  {people['in_flight']} recipient(s) are being sent by another "
            "'digest send' right now"
        )
    if result.outbox is not None:
        typer.echo(f"outbox: {result.outbox}")
    if result.report.stopped_by:
        raise DeliveryError(result.report.stopped_by)
    if result.report.interrupted:
        raise DeliveryError(
            "interrupted: the batches in flight were recorded; run "
            "'digest send' again to send the rest"
        )
    if result.state is State.FAILED or people["pending"]:
        raise DeliveryError(left_over(edition_id, people) or f"see 'digest status {edition_id}'")


def alert_command(
    app: App,
    *,
    subject: str,
    body: Path,
    list_slug: str | None,
    test_to: str | None,
    dry_run: bool,
    yes: bool,
    at: str | None = None,
) -> None:
    """Render the alert, then send it to a test address, or store it and send it (now or at
    its time) to its lists through the ledger."""
    draft = draft_alert(app, subject, read_body(body), list_slug)
    transport = app.transport().name
    if test_to is not None:
        given = send_alert_test(app, draft, test_to)
        typer.echo(f"test sent to {given} through {transport}")
        return
    when = parse_at(at, app.settings, app.clock()) if at is not None else None
    lists = ", ".join(draft.slugs)
    typer.echo(f"alert {draft.id}: {draft.email.subject}")
    typer.echo(f"  lists: {lists}; recipients: {draft.recipients}; transport: {transport}")
    if dry_run:
        typer.echo("dry run: nothing sent")
        return
    if not yes and sys.stdin.isatty():
        moment = "now" if when is None else f"at {when:%H:%M on %d %B}"
        typer.confirm(
            f"Send '{draft.email.subject}' to {draft.recipients} recipient(s) on {lists} {moment}?",
            abort=True,
        )
    store_alert(app, draft, who=who_am_i(), at=when)
    if when is not None:
        typer.echo(
            f"scheduled for {when:%A %d %B %Y %H:%M %Z}: 'digest serve' sends it then "
            f"('digest cancel {draft.id}' stops it)"
        )
        show_checks(run_checks(app.settings, app.engine, draft.id, app.clock()))
        return
    with stop_on_signals() as stop, _progress(draft.id) as events:
        result = send(app, draft.id, who=who_am_i(), stop=stop, events=events)
    _finish_send(result)


def cancel_command(app: App, edition_id: str, *, note: str) -> None:
    stopped = cancel(app, edition_id, who=who_am_i(), note=note)
    typer.echo(f"{edition_id} cancelled: {stopped}")
