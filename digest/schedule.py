"""The scheduler (APScheduler 3, its job store in the project's database): collect daily,
build and send weekly; every minute, scheduled alerts and unapproved editions at their
deadline. Started by `digest serve`. What each job does lives in ``digest.lifecycle``.

Jobs are kept in the database, so a restart within ``schedule.grace_minutes`` of a missed
run makes it once (coalesced); a later one records the week as missed. Times are in the
organisation's timezone, so a 07:00 job stays at 07:00 across clock changes.
"""

from __future__ import annotations

import logging
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Settings
from digest.context import open_app
from digest.crontab import cron
from digest.dispatch.morning import MorningTrigger
from digest.errors import DigestError
from digest.store import operations
from digest.store.db import sqlite_url_for

log = logging.getLogger(__name__)
STOP = threading.Event()  # set on SIGTERM: sends finish their batches in flight and stop
HOLDER = f"{socket.gethostname()}:serve"
SCHEDULER_BEAT = "scheduler"  # its every-minute job says it is alive


def weekly_trigger(settings: Settings) -> BaseTrigger:
    """``schedule.send``; with ``deliver_at_local``, each run moved before the first
    morning of its day anywhere (see :mod:`digest.dispatch.morning`)."""
    send = cron(settings.schedule.send, settings, "send")
    at = settings.schedule.deliver_at_local
    return send if at is None else MorningTrigger(send, at)


def make_scheduler(settings: Settings, config: Path) -> BackgroundScheduler:
    """A paused scheduler with the project's jobs, kept in the project's database."""
    url = sqlite_url_for(settings.database_url, settings.base_dir)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url, tablename="scheduler_jobs")},
        timezone=settings.organisation.zone,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.schedule.grace_minutes * 60,
        },
    )
    scheduler.start(paused=True)
    args = [str(config.resolve())]
    wanted: dict[str, tuple[Any, Any]] = {
        "collect": (collect_job, cron(settings.schedule.collect, settings, "collect")),
        "weekly": (weekly_job, weekly_trigger(settings)),
        "backup": (backup_job, cron(settings.schedule.backup, settings, "backup")),
        "auto-send": (
            auto_send_job,
            # Every minute: scheduled alerts, approval deadlines, waiting confirmations.
            IntervalTrigger(minutes=1, timezone=settings.organisation.zone),
        ),
    }
    for job_id, (func, trigger) in wanted.items():
        job = scheduler.get_job(job_id)
        if job is None:
            scheduler.add_job(func, trigger, id=job_id, args=args, name=job_id)
        elif str(job.trigger) != str(trigger) or list(job.args) != args:
            # Changed in config.toml: a new schedule (a stored one keeps its missed runs).
            scheduler.modify_job(job_id, func=func, args=args)
            scheduler.reschedule_job(job_id, trigger=trigger)
    scheduler.add_listener(_on_missed(settings, config), EVENT_JOB_MISSED)
    return scheduler


def _on_missed(settings: Settings, config: Path) -> Any:
    def record(event: JobExecutionEvent) -> None:
        if event.job_id != "weekly":
            log.warning("job %s due %s was missed", event.job_id, event.scheduled_run_time)
            return
        from digest.lifecycle.weekly import record_missed

        record_missed(open_app(config), event.scheduled_run_time)

    return record


def collect_job(config: str) -> None:
    from digest.collect import collect

    app = open_app(Path(config))
    report = collect(app.settings, app.engine, app.clock())
    log.info(
        "collect: %s new, %s of %s sources failed",
        report.added,
        len(report.failed),
        len(report.outcomes),
    )


def weekly_job(config: str) -> None:
    from digest.lifecycle.weekly import run_weekly

    log.info("weekly: %s", run_weekly(open_app(Path(config)), holder=HOLDER, stop=STOP))


def auto_send_job(config: str) -> None:
    """Every minute: scheduled alerts whose time has come, approval deadlines passed, and
    confirmation emails still waiting, welcome emails to whoever joined."""
    from digest.audience.confirmations import send_waiting
    from digest.lifecycle.alerts import send_due
    from digest.lifecycle.weekly import auto_send_due
    from digest.lifecycle.welcome import send_welcomes

    app = open_app(Path(config))
    with app.engine.begin() as conn:  # /healthz reads it: the scheduler is running
        operations.beat(conn, SCHEDULER_BEAT, app.clock())
    for alert in send_due(app, stop=STOP):
        log.info("alert %s: its time came", alert)
    for edition_id in auto_send_due(app, stop=STOP):
        log.info("auto-send: %s went out without approval (edition.auto_send_after)", edition_id)
    if sent := send_waiting(app):
        log.info("sent %s waiting confirmation email(s)", sent)
    if welcomed := send_welcomes(app, stop=STOP):
        log.info("sent the welcome email to %s newcomer(s)", welcomed)


def backup_job(config: str) -> None:
    """Daily: a backup into [backup] dir, only the newest [backup] keep left there. A
    failure is logged (and recorded, for the console), never raised into the scheduler."""
    from digest.backup import take_backup

    try:
        taken = take_backup(open_app(Path(config)), out=None)
    except DigestError as exc:
        log.error("backup: %s", exc)
    except Exception:
        log.exception("backup: unexpected failure")
    else:
        log.info("backup: %s (%s bytes)", taken.path, taken.bytes)


def alert_job(config: str, alert: str, list_slug: str | None = None) -> None:
    """An alert scheduled by an older version, kept in the job store: it goes if it is
    still scheduled (new ones wait in the database for ``auto_send_job``)."""
    from digest.lifecycle.alerts import send_due

    send_due(open_app(Path(config)), stop=STOP)


def resume_job(config: str) -> None:
    from digest.lifecycle.sending import resume_unfinished

    for edition_id in resume_unfinished(open_app(Path(config)), stop=STOP):
        log.info("resumed the unfinished send of %s", edition_id)


def next_runs(scheduler: BackgroundScheduler) -> list[tuple[str, datetime | None]]:
    return [
        (job.id, job.next_run_time.astimezone(UTC) if job.next_run_time else None)
        for job in scheduler.get_jobs()
    ]


def next_weekly_send(settings: Settings, now: datetime) -> datetime | None:
    """When the weekly job runs next, from ``schedule.send`` (the dashboard shows it)."""
    fire: datetime | None = weekly_trigger(settings).get_next_fire_time(None, now)
    return fire
