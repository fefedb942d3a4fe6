"""`digest editions`, `approve`, `reject` and `serve`: editions over time."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import datetime
from pathlib import Path

import typer
import uvicorn
from sqlalchemy.engine import Engine

from digest.commands.common import stop_on_signals, who_am_i
from digest.config import Secrets, Settings
from digest.schedule import STOP as SCHEDULER_STOP
from digest.schedule import make_scheduler, next_runs, resume_job
from digest.store import editions as editions_store
from digest.store import ledger
from digest.web.app import create_app
from digest.web.console import wait_for_background
from digest.web.pages import HideTokens
from digest.weekly import approve, reject


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
    with stop_on_signals() as stop:
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


def serve_command(
    settings: Settings, engine: Engine, config: Path, *, host: str, port: int
) -> None:
    """The web app (uvicorn) and the scheduler in one process, until SIGTERM or Ctrl-C.

    uvicorn handles the signals; when it stops, the scheduler lets running sends finish
    their batches in flight, records them, and stops.
    """
    app = create_app(settings, engine, Secrets.from_env())
    scheduler = make_scheduler(settings, config)
    scheduler.resume()
    # A send cut short by the last stop (SIGTERM, a crash) goes on now, not next week.
    threading.Thread(
        target=resume_job, args=[str(config.resolve())], name="digest-resume", daemon=True
    ).start()
    for job_id, when in next_runs(scheduler):
        typer.echo(f"{job_id}: next run {when:%Y-%m-%d %H:%M} UTC" if when else f"{job_id}: -")
    typer.echo(f"web app on http://{host}:{port}")
    logging.getLogger("uvicorn.access").addFilter(HideTokens())
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run()
    finally:
        SCHEDULER_STOP.set()
        scheduler.shutdown(wait=True)
        if left := wait_for_background(timeout=120):
            typer.secho(
                f"{left} send(s) from the console still running: 'digest serve' resumes them",
                err=True,
            )
