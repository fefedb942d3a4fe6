"""The address rule: what counts as one person's address, wherever an address comes in
(an import, a sign-up, a staff account, SendGrid's lists and events, a test send); and the
timezone rule: what counts as a subscriber's own timezone (an import, a sign-up, the
preferences page)."""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import email_validator
from email_validator import validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, EMAIL_MAX_LENGTH

from digest.errors import AudienceError

# Files in the zone database that are no place anyone lives in.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


# The plain addresses email-validator surely accepts as they are: an ASCII dot-atom before
# the @ (RFC 5322 atext), ASCII hostname labels after it, the last label ending in a
# letter. Anything else (quotes, IDN, xn--, a display name, spaces inside) goes to
# email-validator itself, so its answers and its error messages stay the only ones.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"  # all top-level domains end in a letter
_PLAIN = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@((?:{_LABEL}\.)+{_TLD})")
_MAILBOX_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)  # RFC 2142: info@, abuse@, ...
# Special-use names (localhost, .test, .onion, ...): those and their subdomains.
_SPECIAL_NAMES = "|".join(map(re.escape, email_validator.SPECIAL_USE_DOMAIN_NAMES))
_SPECIAL_USE = re.compile(rf"(?:\A|\.)(?:{_SPECIAL_NAMES})\Z")


def plain_normalized(given: str) -> str | None:
    """email-validator's ``normalized`` for a plain ASCII address, without calling it
    (22 µs an address: most of a large import); None for anything that is not plainly
    valid, which email-validator must then judge."""
    if len(given) > EMAIL_MAX_LENGTH:  # an ASCII address: as many bytes as characters
        return None
    plain = _PLAIN.fullmatch(given)
    if plain is None:
        return None
    domain = plain.group(1).lower()  # UTS-46 maps ASCII to lower case and nothing else
    # "ab--" labels (RFC 5890's reserved R-LDH, and Punycode) need the IDNA checks.
    if "--" in domain or _SPECIAL_USE.search(domain):
        return None
    local = given[: plain.start(1) - 1]
    if local.lower() in _MAILBOX_NAMES:
        local = local.lower()
    return f"{local}@{domain}"


def email_key(address: str) -> tuple[str, str]:
    """(address as given, matching key) or EmailNotValidError. The key ignores case."""
    given = address.strip()
    normalized = plain_normalized(given)
    if normalized is None:
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
