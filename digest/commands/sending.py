"""What `digest send`, `digest status` and `digest alert` print and ask."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.engine import Engine

from digest import clock
from digest.alert import alert_id, read_body, render_alert, send_test, store_alert
from digest.commands.common import stop_on_signals, warn, who_am_i
from digest.config import Secrets, Settings, config_path
from digest.dispatch.batch import Outcome, Transport
from digest.dispatch.outbox import OutboxTransport
from digest.dispatch.plan import SendPlan, list_slugs, plan_send
from digest.dispatch.run import RunReport, mark_abandoned
from digest.dispatch.send import choose_transport, deliver
from digest.dispatch.suppressions import refresh_before_send
from digest.errors import DeliveryError
from digest.schedule import schedule_alert
from digest.store import audience, ledger
from digest.store import editions as editions_store
from digest.weekly import mark_sent_if_done, parse_at


def _show_plan(plan: SendPlan, engine: Engine, transport: str) -> None:
    formats = ", ".join(f"{n} {fmt}" for fmt, n in sorted(plan.new_recipients.items()))
    with engine.connect() as conn:
        state = ledger.summary(conn, plan.edition.id)
    waiting = state["recipients"]["pending"] + (
        0 if plan.written else sum(plan.new_recipients.values())
    )
    typer.echo(f"edition {plan.edition.id}: {plan.edition.subject}")
    typer.echo(f"  lists: {', '.join(plan.lists)}; transport: {transport}")
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


def send_command(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    *,
    list_slug: str | None,
    edition_id: str | None,
    dry_run: bool,
    yes: bool,
    resend_uncertain: bool = False,
    now: datetime,
) -> None:
    transport = choose_transport(settings, secrets, now)
    if not dry_run:
        _pull_suppressions(transport, engine, now)
    ask = not (yes or dry_run) and sys.stdin.isatty()

    def plan(rehearse: bool) -> SendPlan:
        return plan_send(
            settings,
            engine,
            edition_id=edition_id,
            list_slug=list_slug,
            transport=transport.name,
            now=now,
            dry_run=rehearse,
        )

    planned = plan(dry_run or ask)
    if not dry_run:
        mark_abandoned(engine, planned.edition.id, now)
    _show_plan(planned, engine, transport.name)
    if dry_run:
        typer.echo("dry run: nothing sent")
        return
    if ask:
        waiting = sum(planned.new_recipients.values())
        typer.confirm(f"Send {planned.edition.id} to {waiting} new recipient(s) now?", abort=True)
        planned = plan(False)
    with engine.begin() as conn:
        editions_store.set_state(conn, planned.edition.id, "sending", who=who_am_i(), now=now)
    with stop_on_signals() as stop:
        report = _deliver_with_progress(
            settings, engine, secrets, planned, transport, stop, resend_uncertain
        )
    _finish_send(engine, planned, transport, report)


def _pull_suppressions(transport: Transport, engine: Engine, now: datetime) -> None:
    if added := refresh_before_send(transport, engine, now, warn=warn):
        typer.echo(f"  {added} address(es) newly suppressed from SendGrid's lists")


def _deliver_with_progress(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    plan: SendPlan,
    transport: Transport,
    stop: threading.Event,
    resend_uncertain: bool,
) -> RunReport:
    """A progress bar on a terminal, a log line per batch otherwise."""

    def run(on_batch: Callable[[int, Outcome, int], None]) -> RunReport:
        return deliver(
            settings,
            engine,
            secrets,
            plan,
            transport,
            clock=clock.now,
            stop=stop,
            resend_uncertain=resend_uncertain,
            on_batch=on_batch,
        )

    if not sys.stderr.isatty():

        def log_batch(seq: int, outcome: Outcome, size: int) -> None:
            detail = f": {outcome.reason}" if outcome.reason else ""
            typer.echo(
                f"edition {plan.edition.id} batch {seq} ({size} recipients): "
                f"{outcome.kind}{detail}",
                err=True,
            )

        return run(log_batch)
    with engine.connect() as conn:
        total = ledger.summary(conn, plan.edition.id)["recipients"]["pending"]
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task(f"sending {plan.edition.id}", total=total)
        return run(lambda _seq, _outcome, size: progress.advance(task, size))


def _finish_send(engine: Engine, plan: SendPlan, transport: Transport, report: RunReport) -> None:
    people = mark_sent_if_done(engine, plan.edition.id, who=who_am_i(), now=clock.now())
    typer.echo(
        f"edition {plan.edition.id}: {people['accepted']} accepted, {people['pending']} "
        f"pending, {people['in_flight']} in flight, {people['failed']} failed, "
        f"{people['uncertain']} uncertain"
    )
    if people["in_flight"]:
        typer.echo(
            f"  {people['in_flight']} recipient(s) are being sent by another "
            "'digest send' right now"
        )
    if isinstance(transport, OutboxTransport):
        typer.echo(f"outbox: {transport.folder(plan.edition.id)}")
    if report.stopped_by:
        raise DeliveryError(report.stopped_by)
    if report.interrupted:
        raise DeliveryError(
            "interrupted: the batches in flight were recorded; run "
            "'digest send' again to send the rest"
        )
    if people["uncertain"]:
        raise DeliveryError(
            f"{people['uncertain']} recipient(s) are in uncertain batches (SendGrid may have "
            f"taken them): see 'digest status {plan.edition.id}'; send them again only with "
            "'digest send --resend-uncertain'"
        )
    if people["failed"] or people["pending"]:
        raise DeliveryError(
            f"not every recipient was accepted: see 'digest status "
            f"{plan.edition.id}' for the reasons, then run 'digest send' again"
        )


def status_command(engine: Engine, edition_id: str | None, *, as_json: bool) -> None:
    with engine.connect() as conn:
        if edition_id is None:
            sent = ledger.editions_with_sends(conn)
            if not sent:
                raise DeliveryError("nothing has been sent yet: run 'digest send'")
            edition_id = sent[0]
        state = ledger.summary(conn, edition_id)
    if as_json:
        typer.echo(json.dumps(state))
        return
    people, batches = state["recipients"], state["batches"]
    typer.echo(f"edition {edition_id}")
    for label, counts in (("recipients", people), ("batches", batches)):
        typer.echo(
            f"  {label}: " + ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in ledger.STATES)
        )
    for failure in state["failures"]:
        typer.echo(f"  batch {failure['batch']}: {failure['reason']}")
    if not sum(batches.values()):
        typer.echo("  nothing planned for this edition: run 'digest send'")
    elif batches["pending"] or batches["failed"]:
        typer.echo("  next: run 'digest send' again to send the pending and failed batches")
    if batches["in_flight"]:
        typer.echo(
            "  batches in flight: a 'digest send' is running, or was cut off (the next "
            "'digest send' marks those uncertain)"
        )
    if batches["uncertain"]:
        typer.echo(
            "  uncertain batches may have been accepted; to send them again anyway, "
            "run 'digest send --resend-uncertain'"
        )


def alert_command(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    *,
    subject: str,
    body: Path,
    list_slug: str | None,
    test_to: str | None,
    dry_run: bool,
    yes: bool,
    now: datetime,
    at: str | None = None,
    config: Path | None = None,
) -> None:
    """Render the alert, then send it to a test address, or to its lists through the ledger."""
    email = render_alert(settings, subject, read_body(body), alert=alert_id(now), now=now)
    transport = choose_transport(settings, secrets, now)
    if test_to is not None:
        given = send_test(settings, secrets, email, transport, test_to, list_slug, now)
        typer.echo(f"test sent to {given} through {transport.name}")
        return
    ident = alert_id(now)
    slugs = list_slugs(settings, list_slug, "alerts")
    with engine.connect() as conn:
        count = sum(1 for _ in audience.recipients_for(conn, slugs))
    typer.echo(f"alert {ident}: {email.subject}")
    typer.echo(f"  lists: {', '.join(slugs)}; recipients: {count}; transport: {transport.name}")
    if dry_run:
        typer.echo("dry run: nothing sent")
        return
    if not yes and sys.stdin.isatty():
        typer.confirm(
            f"Send '{email.subject}' to {count} recipient(s) on {', '.join(slugs)} now?", abort=True
        )
    store_alert(engine, settings, ident, email, now)
    if at is not None:
        when = parse_at(at, settings, now)
        schedule_alert(settings, config_path(config), ident, list_slug, when)
        with engine.begin() as conn:
            editions_store.set_state(
                conn,
                ident,
                "scheduled",
                who=who_am_i(),
                now=now,
                note=f"to go at {when.isoformat(timespec='minutes')}",
            )
        typer.echo(f"scheduled for {when:%A %d %B %Y %H:%M %Z}: 'digest serve' sends it then")
        return
    _pull_suppressions(transport, engine, now)
    planned = plan_send(
        settings,
        engine,
        edition_id=ident,
        list_slug=list_slug,
        transport=transport.name,
        now=now,
        dry_run=False,
        kind="alerts",
    )
    with stop_on_signals() as stop:
        report = _deliver_with_progress(settings, engine, secrets, planned, transport, stop, False)
    _finish_send(engine, planned, transport, report)
