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


@cache
def timezone_names() -> tuple[str, ...]:
    """Every IANA name a subscriber may choose, sorted (the forms' choices)."""
    return tuple(sorted(available_timezones() - NOT_ZONES))


def subscriber_timezone(value: str | None) -> str | None:
    """A subscriber's timezone as stored: None when blank (the organisation's), else an IANA
    name ``zoneinfo`` knows, spelt exactly (``Pacific/Tongatapu``); AudienceError if not."""
    name = (value or "").strip()
    if not name:
        return None
    known = name in timezone_names()  # before ZoneInfo: no path, nor a long name, reaches it
    try:
        known = known and ZoneInfo(name) is not None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        known = False
    if not known:
        raise AudienceError(
            f"timezone {name[:64]!r} is not an IANA timezone name: use one such as "
            "'America/New_York' or 'Pacific/Honolulu', or leave it empty for the organisation's"
        )
    return name
