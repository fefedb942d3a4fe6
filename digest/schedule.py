"""The scheduler (APScheduler 3, its job store in the project's database): collect daily,
build and send weekly, send unapproved editions at their deadline. Started by `digest serve`.

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
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import clock
from digest.config import Secrets, Settings, load_settings
from digest.errors import ConfigError
from digest.store import open_engine
from digest.store.db import sqlite_url_for

log = logging.getLogger(__name__)
STOP = threading.Event()  # set on SIGTERM: sends finish their batches in flight and stop
HOLDER = f"{socket.gethostname()}:serve"


def cron(expression: str, settings: Settings, key: str) -> CronTrigger:
    """A crontab line in the organisation's timezone, or a ConfigError naming the key."""
    try:
        return CronTrigger.from_crontab(expression, timezone=settings.organisation.zone)
    except ValueError as exc:
        raise ConfigError(
            f"schedule.{key} {expression!r} is not a cron line ({exc}): write it like '0 7 * * thu'"
        ) from None


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
        "weekly": (weekly_job, cron(settings.schedule.send, settings, "send")),
        "auto-send": (
            auto_send_job,
            # Every minute: approval deadlines; it also wakes the scheduler for alerts
            # that `digest alert --at` put in the job store from another process.
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
    scheduler.add_listener(_on_missed(settings), EVENT_JOB_MISSED)
    return scheduler


def _on_missed(settings: Settings) -> Any:
    def record(event: JobExecutionEvent) -> None:
        if event.job_id != "weekly":
            log.warning("job %s due %s was missed", event.job_id, event.scheduled_run_time)
            return
        from digest.weekly import record_missed

        engine = open_engine(settings.database_url, settings.base_dir)
        record_missed(engine, settings, event.scheduled_run_time, clock.now())
        log.warning(
            "the weekly edition due %s was missed (past the grace period)", event.scheduled_run_time
        )

    return record


def _context(config: str) -> tuple[Settings, Any, Secrets]:
    settings = load_settings(Path(config))
    return settings, open_engine(settings.database_url, settings.base_dir), Secrets.from_env()


def collect_job(config: str) -> None:
    from digest.collect import collect

    settings, engine, _ = _context(config)
    report = collect(settings, engine, clock.now())
    log.info(
        "collect: %s new, %s of %s sources failed",
        report.added,
        len(report.failed),
        len(report.outcomes),
    )


def weekly_job(config: str) -> None:
    from digest.weekly import run_weekly

    settings, engine, secrets = _context(config)
    log.info(
        "weekly: %s",
        run_weekly(settings, engine, secrets, now=clock.now(), holder=HOLDER, stop=STOP),
    )


def auto_send_job(config: str) -> None:
    from digest.weekly import auto_send_due

    settings, engine, secrets = _context(config)
    for edition_id in auto_send_due(settings, engine, secrets, now=clock.now()):
        log.info("auto-send: %s went out without approval (edition.auto_send_after)", edition_id)


def next_runs(scheduler: BackgroundScheduler) -> list[tuple[str, datetime | None]]:
    return [
        (job.id, job.next_run_time.astimezone(UTC) if job.next_run_time else None)
        for job in scheduler.get_jobs()
    ]


def schedule_alert(
    settings: Settings, config: Path, alert: str, list_slug: str | None, at: datetime
) -> None:
    """Put a stored alert in the job store; the running `digest serve` sends it at ``at``."""
    scheduler = make_scheduler(settings, config)
    try:
        scheduler.add_job(
            alert_job,
            DateTrigger(run_date=at),
            id=f"alert:{alert}",
            name=alert,
            args=[str(config.resolve()), alert, list_slug],
            replace_existing=True,
        )
    finally:
        scheduler.shutdown(wait=False)


def alert_job(config: str, alert: str, list_slug: str | None) -> None:
    from digest.weekly import send_alert

    settings, engine, secrets = _context(config)
    send_alert(settings, engine, secrets, alert, list_slug, now=clock.now(), stop=STOP)
    log.info("alert %s sent", alert)


def resume_job(config: str) -> None:
    from digest.weekly import resume_unfinished

    settings, engine, secrets = _context(config)
    for edition_id in resume_unfinished(settings, engine, secrets, now=clock.now(), stop=STOP):
        log.info("resumed the unfinished send of %s", edition_id)
