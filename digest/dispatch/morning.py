"""Each reader's morning: when a weekly edition reaches each timezone.

With ``[schedule] deliver_at_local = "07:00"`` the weekly edition is delivered at 07:00
in every reader's own timezone (theirs, or the organisation's) on its send day: the
first day of the edition's ISO week on which ``[schedule] send`` fires. The weekly job
then starts before the first morning anywhere (UTC+14), so no delivery time is in the
past when it is planned, and SendGrid holds each batch until its ``send_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from digest.config import Settings
from digest.crontab import cron
from digest.errors import DeliveryError
from digest.models import Recipient

AHEAD_LIMIT = timedelta(hours=72)  # SendGrid takes a send_at at most 72 hours ahead
FIRST_MORNING = timezone(timedelta(hours=14))  # Kiribati: the first morning anywhere
LEAD = timedelta(hours=1)  # to collect, build, check and plan before the first morning
LOOK_BACK = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class Morning:
    """The local time on one day at which a weekly edition reaches each zone."""

    day: date
    at: time
    home: str  # the organisation's timezone: a reader who set none is in it

    def zone_of(self, person: Recipient) -> str:
        return person.timezone or self.home

    def deliver_at(self, zone: str) -> datetime:
        local = datetime.combine(self.day, self.at, tzinfo=ZoneInfo(zone))
        return local.astimezone(UTC)

    def plan_for(self, person: Recipient, now: datetime) -> tuple[str, datetime | None]:
        """The person's zone, and when their mail is delivered (None: now, their morning
        has come already)."""
        zone = self.zone_of(person)
        at = self.deliver_at(zone)
        if at > now + AHEAD_LIMIT:
            raise DeliveryError(
                f"this edition reaches {zone} on {self.day:%A %-d %B} at {self.at:%H:%M}, "
                f"more than 72 hours from now (SendGrid holds mail no longer): send it "
                f"after {(at - AHEAD_LIMIT):%A %-d %B %H:%M} UTC"
            )
        return zone, (at if at > now else None)


def morning_for(settings: Settings, edition_id: str) -> Morning | None:
    """The morning a weekly edition is delivered in, or None when it goes at once."""
    at = settings.schedule.deliver_at_local
    if at is None:
        return None
    return Morning(send_day(settings, edition_id), at, settings.organisation.timezone)


def send_cron(settings: Settings) -> CronTrigger:
    """``[schedule] send`` as a trigger in the organisation's timezone."""
    return cron(settings.schedule.send, settings, "send")


def send_day(settings: Settings, edition_id: str) -> date:
    """The first day of the edition's ISO week (``2026-W48``) on which the send job fires;
    the week's Monday if it fires on none."""
    year, _, week = edition_id.partition("-W")
    monday = date.fromisocalendar(int(year), int(week), 1)
    zone = settings.organisation.zone
    start = datetime.combine(monday, time(0), tzinfo=zone)
    fire = send_cron(settings).get_next_fire_time(None, start)
    if fire is None or fire >= start + timedelta(days=7):
        return monday
    day: date = fire.astimezone(zone).date()
    return day


def job_start(at: time, fire: datetime, zone: ZoneInfo) -> datetime:
    """When the weekly job runs for the send-job fire ``fire``: before the first morning
    of its day anywhere, and never after the fire itself."""
    day = fire.astimezone(zone).date()
    first = datetime.combine(day, at, tzinfo=FIRST_MORNING) - LEAD
    return min(first, fire)


def fire_started_by(settings: Settings, now: datetime) -> datetime | None:
    """The send-job fire whose weekly job has started by ``now`` (the latest one), with
    local delivery; None without it."""
    at = settings.schedule.deliver_at_local
    if at is None:
        return None
    cron = send_cron(settings)
    zone = settings.organisation.zone
    fire = cron.get_next_fire_time(None, now - LOOK_BACK)
    found = None
    while fire is not None and job_start(at, fire, zone) <= now:
        found = fire
        fire = cron.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return found


class MorningTrigger(BaseTrigger):  # type: ignore[misc]
    """The weekly job's trigger with local delivery: the send cron, each fire moved
    to :func:`job_start` (picklable: the scheduler's job store keeps it)."""

    def __init__(self, cron: CronTrigger, at: time) -> None:
        self.cron, self.at = cron, at

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        base = now if previous_fire_time is None else min(now, previous_fire_time)
        fire = self.cron.get_next_fire_time(None, base - LOOK_BACK)
        while fire is not None:
            start = job_start(self.at, fire, self.cron.timezone)
            later = previous_fire_time is None or start > previous_fire_time
            if later and start >= base:
                return start
            fire = self.cron.get_next_fire_time(fire, fire + timedelta(seconds=1))
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "cron": self.cron, "at": self.at}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cron, self.at = state["cron"], state["at"]

    def __str__(self) -> str:
        return f"morning[{self.cron}, deliver at {self.at:%H:%M} local]"
