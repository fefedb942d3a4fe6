"""The address rule: what counts as one person's address, wherever an address comes in
(an import, a sign-up, a staff account, SendGrid's lists and events, a test send); and the
timezone rule: what counts as a subscriber's own timezone (an import, a sign-up, the
preferences page)."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import validate_email

from digest.errors import AudienceError

# Files in the zone database that are no place anyone lives in.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def email_key(address: str) -> tuple[str, str]:
    """(address as given, matching key) or EmailNotValidError. The key ignores case."""
    given = address.strip()
    normalized = validate_email(given, check_deliverability=False).normalized
    return given, normalized.casefold()


MAX_ZONE_NAME = 64  # subscribers.timezone's size


@cache
def timezone_names() -> tuple[str, ...]:
    """Every IANA name a subscriber may choose, sorted (the forms' choices)."""
    return tuple(sorted(available_timezones() - NOT_ZONES))


def known_timezone(name: str) -> bool:
    """The one rule for a timezone, the organisation's or a subscriber's: an IANA name
    ``zoneinfo`` knows, spelt exactly (``Pacific/Tongatapu``), not an alias of the
    machine's own (``localtime``)."""
    # ZoneInfo itself refuses an absolute or escaping path; listing every zone to look the
    # name up would cost every process 90 ms at its first config load.
    if not name or len(name) > MAX_ZONE_NAME or name in NOT_ZONES or "\\" in name:
        return False
    try:
        return ZoneInfo(name) is not None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False


def subscriber_timezone(value: str | None) -> str | None:
    """A subscriber's timezone as stored: None when blank (the organisation's), else a
    :func:`known_timezone`; AudienceError if not."""
    name = (value or "").strip()
    if not name:
        return None
    if not known_timezone(name):
        raise AudienceError(
            f"timezone {name[:64]!r} is not an IANA timezone name: use one such as "
            "'America/New_York' or 'Pacific/Honolulu', or leave it empty for the organisation's"
        )
    return name
