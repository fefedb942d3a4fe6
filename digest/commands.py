"""What each command prints: the CLI's presentation, over the library's service functions."""

from __future__ import annotations

import getpass
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from email_validator import EmailNotValidError
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.engine import Engine

from digest import clock
from digest.alert import alert_id, read_body, render_alert, store_alert
from digest.audience.export import export_csv
from digest.audience.importer import email_key, import_csv
from digest.audience.members import details, list_summary
from digest.build import build
from digest.collect import SourceOutcome, collect
from digest.config import Secrets, Settings, config_path
from digest.dispatch.batch import Outcome, Transport
from digest.dispatch.copies import send_copies
from digest.dispatch.outbox import OutboxTransport
from digest.dispatch.plan import SendPlan, list_slugs, plan_send
from digest.dispatch.run import RunReport, mark_abandoned
from digest.dispatch.send import choose_transport, deliver
from digest.dispatch.sendgrid import SendGridTransport
from digest.dispatch.suppressions import pull_suppressions
from digest.errors import AudienceError, DeliveryError, DigestError
from digest.models import Recipient, RenderedEmail
from digest.schedule import STOP as SCHEDULER_STOP
from digest.schedule import make_scheduler, next_runs, resume_job, schedule_alert
from digest.store import audience, ledger
from digest.store import editions as editions_store
from digest.weekly import approve, mark_sent_if_done, parse_at, reject


def _warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def _show_outcome(outcome: SourceOutcome) -> None:
    if outcome.error:
        _warn(outcome.error)
        return
    if outcome.not_modified:
        typer.echo(f"{outcome.label}: not modified since the last collect")
    else:
        extra = f", {outcome.merged} merged as duplicates" if outcome.merged else ""
        extra += f", {outcome.updated} updated" if outcome.updated else ""
        extra += f", {outcome.removed} removed" if outcome.removed else ""
        extra += f" ({outcome.upcoming} upcoming)" if outcome.upcoming else ""
        typer.echo(f"{outcome.label}: {outcome.added} new{extra}")
    for warning in outcome.warnings:
        _warn(warning)


def collect_command(settings: Settings, engine: Engine, now: datetime) -> None:
    """Succeeds when some source worked (failures are warnings); fails when all failed."""
    report = collect(settings, engine, now, on_outcome=_show_outcome)
    failed = len(report.failed)
    total = len(report.outcomes)
    if report.all_failed:
        raise DigestError(f"all {total} sources failed: nothing collected (see the warnings above)")
    if failed:
        _warn(
            f"{failed} of {total} sources failed and were skipped; {report.added} new items "
            "from the rest"
        )
    else:
        typer.echo(f"collected {total} sources: {report.added} new")


def build_command(
    settings: Settings,
    engine: Engine,
    *,
    week: str | None,
    out: Path | None,
    force: bool,
    now: datetime,
) -> None:
    result = build(settings, engine, week=week, out=out, force=force, now=now)
    for unplaced, count in result.unplaced.items():
        _warn(
            f"{count} item(s) in section {unplaced!r}, which is not in edition.sections: "
            "left out (add the section, or change the feed's section)"
        )
    if result.edition is None or result.email is None:
        typer.echo(
            f"no new items for {result.plan.id} since the last edition: no edition built "
            "(use --force to build one anyway)"
        )
        return
    edition = result.edition
    typer.echo(f"edition {edition.id}: {edition.subject}")
    if edition.editor_note:
        typer.echo("  editor's note: 1")
    for section in edition.sections:
        more = f" (+{section.omitted} on the website)" if section.omitted else ""
        typer.echo(f"  {section.key}: {section.count}{more}")
    typer.echo(
        f"  HTML {result.html_bytes / 1024:.1f} KB, text "
        f"{len(result.email.text.encode()) / 1024:.1f} KB"
    )
    for made in result.prints:
        left = f", {made.left_out} item(s) left out to fit" if made.left_out else ""
        typer.echo(
            f"  print ({made.profile}): {made.pages} page(s){left}; {made.parts} e-message part(s)"
        )
    typer.echo(
        f"  wrote email.html, email.txt, edition.json and the print files to {result.folder}"
    )


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
        _warn(
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
    if isinstance(transport, SendGridTransport) and not dry_run:
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
    with _stop_on_signals() as stop:
        report = _deliver_with_progress(
            settings, engine, secrets, planned, transport, stop, resend_uncertain
        )
    _finish_send(engine, planned, transport, report)


def _pull_suppressions(transport: SendGridTransport, engine: Engine, now: datetime) -> None:
    try:
        added = pull_suppressions(transport, engine, now)
    except ValueError as exc:
        _warn(f"{exc}: sending anyway, with the suppressions already stored")
        return
    if added:
        typer.echo(f"  {added} address(es) newly suppressed from SendGrid's lists")


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM: finish the batches in flight, record them, stop claiming new ones."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        _warn(f"{signal.Signals(signum).name}: finishing the batches in flight, then stopping")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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


def import_command(
    settings: Settings,
    engine: Engine,
    path: Path,
    *,
    list_slug: str,
    fmt: str | None,
    pending: bool,
    strict: bool,
    dry_run: bool,
    now: datetime,
) -> None:
    """Fails (exit 1) only when the file cannot be read, or with --strict and a rejected row."""
    report = import_csv(
        settings,
        engine,
        path,
        list_slug=list_slug,
        default_format=fmt,
        pending=pending,
        dry_run=dry_run,
        now=now,
        strict=strict,
    )
    for what, lines in (
        ("rejected", report.rejected),
        ("kept out", report.suppressed),
        ("duplicate", report.merged),
    ):
        for line, reason in lines:
            typer.secho(f"{path}:{line}: {what}: {reason}", err=True)
    if strict and report.rejected:
        raise AudienceError(
            f"{len(report.rejected)} row(s) rejected and --strict given: "
            "nothing imported; fix the rows above"
        )
    prefix = "dry run, nothing written: " if dry_run else ""
    typer.echo(
        f"{prefix}added {report.added}, updated {report.updated}, unchanged "
        f"{report.unchanged}, rejected {len(report.rejected)}, suppressed "
        f"{len(report.suppressed)} (list {list_slug})"
    )


def export_command(
    settings: Settings,
    engine: Engine,
    *,
    list_slug: str | None,
    status: str | None,
    out: Path | None,
) -> None:
    if out is None:
        count = export_csv(settings, engine, sys.stdout, list_slug=list_slug, status=status)
    else:
        try:
            with out.open("w", encoding="utf-8", newline="") as fh:
                count = export_csv(settings, engine, fh, list_slug=list_slug, status=status)
        except OSError as exc:
            raise AudienceError(f"cannot write {out} ({exc.strerror})") from None
    typer.secho(f"exported {count} subscriber(s)", err=True)


def show_command(engine: Engine, address: str, *, as_json: bool) -> None:
    info = details(engine, address).as_dict()
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False))
        return
    for key, value in info.items():
        if key == "lists":
            value = (
                ", ".join(
                    f"{m['list']} ({m['status']}, {m['format']}"
                    + (f", {m['profile']})" if m["profile"] else ")")
                    for m in value
                )
                or "none"
            )
        elif key == "suppressed":
            value = (
                "no"
                if value is None
                else f"{value['reason']} since {value['since']} ({value['origin']})"
            )
        typer.echo(f"{key}: {'' if value is None else value}")


def lists_command(settings: Settings, engine: Engine, *, as_json: bool) -> None:
    summary = list_summary(settings, engine)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    slug: {"kind": kind, "name": name, "counts": counts}
                    for slug, kind, name, counts in summary
                }
            )
        )
        return
    for slug, kind, name, counts in summary:
        shown = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no members"
        typer.echo(f"{slug} ({kind}, {name}): {shown}")


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
        _send_test(settings, secrets, email, transport, test_to, list_slug, now)
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
    if isinstance(transport, SendGridTransport):
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
    with _stop_on_signals() as stop:
        report = _deliver_with_progress(settings, engine, secrets, planned, transport, stop, False)
    _finish_send(engine, planned, transport, report)


def _send_test(
    settings: Settings,
    secrets: Secrets,
    email: RenderedEmail,
    transport: Transport,
    address: str,
    list_slug: str | None,
    now: datetime,
) -> None:
    """One copy, clearly marked, to one address: nothing recorded in the ledger."""
    try:
        given, _ = email_key(address)
    except EmailNotValidError as exc:
        raise DeliveryError(f"--test-to {address!r} is not an email address: {exc}") from None
    slug = list_slug or list_slugs(settings, None, "alerts")[0]
    send_copies(
        settings,
        secrets,
        email,
        transport,
        [Recipient(0, given, "")],
        list_slug=slug,
        mark="[TEST]",
        now=now,
        label="test",
    )
    typer.echo(f"test sent to {given} through {transport.name}")


def who_am_i() -> str:
    """The person at the terminal, for the history of editions."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def editions_command(engine: Engine, *, as_json: bool) -> None:
    with engine.connect() as conn:
        rows = editions_store.listing(conn)
        events = editions_store.history(conn)
    last = {}
    for event in reversed(events):
        last[event.edition_id] = event
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "edition": r.id,
                        "subject": r.subject,
                        "state": r.state,
                        "built": r.built_at.isoformat(),
                        "items": r.item_count,
                        "changed_by": last[r.id].who if r.id in last else None,
                        "changed_at": last[r.id].at.isoformat() if r.id in last else None,
                    }
                    for r in rows
                ]
            )
        )
        return
    if not rows and not events:
        typer.echo("no editions yet: run 'digest build'")
    for r in rows:
        change = last.get(r.id)
        by = f" ({change.who}, {change.at:%Y-%m-%d %H:%M} UTC)" if change else ""
        typer.echo(f"{r.id}  {r.state.replace('_', ' ')}{by}  {r.subject}")
    for event in events:
        if event.state in ("missed", "skipped") and event.edition_id not in {r.id for r in rows}:
            typer.echo(f"{event.edition_id}  {event.state}  {event.note}")


def approve_command(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    edition_id: str,
    *,
    yes: bool,
    now: datetime,
) -> None:
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Approve and send {edition_id} now?", abort=True)
    with _stop_on_signals() as stop:
        approve(settings, engine, secrets, edition_id, who=who_am_i(), now=now, stop=stop)
    with engine.connect() as conn:
        people = ledger.summary(conn, edition_id)["recipients"]
    typer.echo(
        f"edition {edition_id} approved: {people['accepted']} accepted, "
        f"{people['pending']} pending, {people['failed']} failed, "
        f"{people['uncertain']} uncertain"
    )


def reject_command(engine: Engine, edition_id: str, *, note: str, now: datetime) -> None:
    reject(engine, edition_id, who=who_am_i(), now=now, note=note)
    typer.echo(f"edition {edition_id} rejected: it will not be sent")


def serve_command(settings: Settings, config: Path) -> None:
    """The scheduler in the foreground until SIGTERM or Ctrl-C."""
    scheduler = make_scheduler(settings, config)
    scheduler.resume()
    # A send cut short by the last stop (SIGTERM, a crash) goes on now, not next week.
    threading.Thread(
        target=resume_job, args=[str(config.resolve())], name="digest-resume", daemon=True
    ).start()
    for job_id, when in next_runs(scheduler):
        typer.echo(f"{job_id}: next run {when:%Y-%m-%d %H:%M} UTC" if when else f"{job_id}: -")
    done = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        typer.echo(
            f"{signal.Signals(signum).name}: finishing running jobs, then stopping", err=True
        )
        SCHEDULER_STOP.set()
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    done.wait()
    scheduler.shutdown(wait=True)
