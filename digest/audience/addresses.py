"""The address rule: what counts as one person's address, wherever an address comes in
(an import, a sign-up, a staff account, SendGrid's lists and events, a test send)."""

from __future__ import annotations

from email_validator import validate_email


def email_key(address: str) -> tuple[str, str]:
    """(address as given, matching key) or EmailNotValidError. The key ignores case."""
    given = address.strip()
    normalized = validate_email(given, check_deliverability=False).normalized
    return given, normalized.casefold()
