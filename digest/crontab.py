"""A crontab line of config.toml as an APScheduler trigger, in the organisation's timezone."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

from digest.config import Settings
from digest.errors import ConfigError


def cron(expression: str, settings: Settings, key: str) -> CronTrigger:
    """A crontab line in the organisation's timezone, or a ConfigError naming the key."""
    try:
        return CronTrigger.from_crontab(expression, timezone=settings.organisation.zone)
    except ValueError as exc:
        raise ConfigError(
            f"schedule.{key} {expression!r} is not a cron line ({exc}): write it like '0 7 * * thu'"
        ) from None
