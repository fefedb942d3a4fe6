"""`digest editions`, `approve`, `reject`, `status` and `serve`: editions over time."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from pathlib import Path

import typer
import uvicorn
from sqlalchemy.engine import Engine
from uvicorn.supervisors import Multiprocess

from digest.commands.common import stop_on_signals, who_am_i
from digest.context import App
from digest.errors import DeliveryError
from digest.lifecycle.deliveries import scheduled_later
from digest.lifecycle.states import State
from digest.lifecycle.weekly import approve, reject
from digest.logs import LogFormat
from digest.schedule import SCHEDULER_BEAT, make_scheduler, next_runs, resume_job
from digest.schedule import STOP as SCHEDULER_STOP
from digest.store import editions as editions_store
from digest.store import ledger, operations
from digest.web.app import create_app
from digest.web.console import wait_for_background
from digest.web.server import WorkerConfig, default_workers, logs_in_background, server_config


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
                        "kind": r.kind,
                        "send_at": r.send_at.isoformat() if r.send_at else None,
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
        when = f" (goes {r.send_at:%Y-%m-%d %H:%M} UTC)" if r.state == State.SCHEDULED else ""
        typer.echo(f"{r.id}  {State(r.state).label}{when}{by}  {r.subject}")
    # Weeks that never got an edition (nothing new, the server down, the job failed): the
    # latest word on each.
    shown = {r.id for r in rows}
    for event in events:  # newest first
        if event.edition_id not in shown:
            shown.add(event.edition_id)
            typer.echo(f"{event.edition_id}  {State(event.state).label}  {event.note}")


def approve_command(app: App, edition_id: str, *, yes: bool, override_reason: str = "") -> None:
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Approve and send {edition_id} now?", abort=True)
    with stop_on_signals() as stop:
        result = approve(
            app, edition_id, who=who_am_i(), stop=stop, override_reason=override_reason
        )
    people = result.people
    typer.echo(
        f"edition {edition_id} approved: {people['accepted']} accepted, "
        f"{people['pending']} pending, {people['failed']} failed, "
        f"{people['uncertain']} uncertain"
    )


def reject_command(app: App, edition_id: str, *, note: str) -> None:
    reject(app, edition_id, who=who_am_i(), note=note)
    typer.echo(f"edition {edition_id} rejected: it will not be sent")


def status_command(engine: Engine, edition_id: str | None, *, as_json: bool, now: datetime) -> None:
    with engine.connect() as conn:
        if edition_id is None:
            sent = ledger.editions_with_sends(conn)
            if not sent:
                raise DeliveryError("nothing has been sent yet: run 'digest send'")
            edition_id = sent[0]
        report = ledger.summary(conn, edition_id)
        later = scheduled_later(conn, edition_id, now)
    if later:  # only when there is any: the object's keys stay as DESIGN gives them
        report["scheduled"] = [w.as_json() for w in later]
    if as_json:
        typer.echo(json.dumps(report))
        return
    people, batches = report["recipients"], report["batches"]
    typer.echo(f"edition {edition_id}")
    for label, counts in (("recipients", people), ("batches", batches)):
        typer.echo(
            f"  {label}: " + ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in ledger.STATES)
        )
    if cancelled := report.get("cancelled"):
        typer.echo(f"  cancelled before delivery: {cancelled['recipients']} recipient(s)")
    for failure in report["failures"]:
        typer.echo(f"  batch {failure['batch']}: {failure['reason']}")
    if later:
        typer.echo(
            f"  still to be delivered: {sum(w.recipients for w in later)} recipient(s), "
            f"held by SendGrid until each reader's morning ('digest cancel {edition_id}' "
            "stops them)"
        )
        for w in later:
            typer.echo(f"    batch {w.batch}: {w.recipients} at {w.when()}")
    for line in _next_steps(batches):
        typer.echo(f"  {line}")


def _next_steps(batches: dict[str, int]) -> list[str]:
    steps = []
    if not sum(batches.values()):
        steps.append("nothing planned for this edition: run 'digest send'")
    elif batches["pending"] or batches["failed"]:
        steps.append("next: run 'digest send' again to send the pending and failed batches")
    if batches["in_flight"]:
        steps.append(
            "batches in flight: a 'digest send' is running, or was cut off (the next "
            "'digest send' marks those uncertain)"
        )
    if batches["uncertain"]:
        steps.append(
            "uncertain batches may have been accepted; to send them again anyway, "
            "run 'digest send --resend-uncertain'"
        )
    return steps


def serve_command(
    app: App,
    config: Path,
    *,
    host: str,
    port: int,
    workers: int | None = None,
    log_format: LogFormat = "text",
    debug: bool = False,
) -> None:
    """The web app (uvicorn) and the scheduler, until SIGTERM or Ctrl-C: in one process, or
    with ``workers`` > 1 the web app in that many worker processes and the scheduler in
    this one alone (the workers never start one). None: see ``default_workers``.

    uvicorn handles the signals; when it stops, the scheduler lets running sends finish
    their batches in flight, records them, and stops.
    """
    workers = workers or default_workers(app.settings)
    web = create_app(app) if workers == 1 else None
    scheduler = make_scheduler(app.settings, config)
    scheduler.resume()
    with app.engine.begin() as conn:  # /healthz: running from the first minute
        operations.beat(conn, SCHEDULER_BEAT, app.clock())
    # A send cut short by the last stop (SIGTERM, a crash) goes on now, not next week.
    threading.Thread(
        target=resume_job, args=[str(config.resolve())], name="digest-resume", daemon=True
    ).start()
    for job_id, when in next_runs(scheduler):
        typer.echo(f"{job_id}: next run {when:%Y-%m-%d %H:%M} UTC" if when else f"{job_id}: -")
    typer.echo(f"web app on http://{host}:{port}" + (f" ({workers} workers)" * (workers > 1)))
    logs_in_background()
    try:
        if web is not None:
            # log_config=None: uvicorn's lines go through the process's own format.
            served = server_config(web, app.settings, host=host, port=port, log_config=None)
            uvicorn.Server(served).run()
        else:
            spread = WorkerConfig(
                app.settings,
                config.resolve(),
                log_format=log_format,
                debug=debug,
                host=host,
                port=port,
                workers=workers,
            )
            Multiprocess(spread, sockets=[spread.bind_socket()]).run()
    finally:
        SCHEDULER_STOP.set()
        scheduler.shutdown(wait=True)
        if left := wait_for_background(timeout=120):
            typer.secho(
                f"{left} send(s) from the console still running: 'digest serve' resumes them",
                err=True,
            )
