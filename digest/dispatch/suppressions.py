"""SendGrid's own suppression lists, pulled into ours before each send."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError
from python_http_client.exceptions import HTTPError
from sqlalchemy.engine import Engine

from digest.audience.addresses import email_key
from digest.dispatch.batch import Transport
from digest.dispatch.sendgrid import SendGridTransport
from digest.store import audience

# SendGrid list -> our reason
SOURCES = {
    "bounces": "bounce",
    "spam_reports": "spam report",
    "invalid_emails": "invalid",
    "unsubscribes": "unsubscribed",
}
PAGE = 500
log = logging.getLogger(__name__)


def refresh_before_send(
    transport: Transport,
    engine: Engine,
    now: datetime,
    *,
    warn: Callable[[str], None] = log.warning,
) -> int:
    """Before every send through SendGrid (by hand, scheduled, or from the console): its
    suppressions into ours. A failure is a warning and the send goes on with the suppressions
    already stored. How many addresses were newly suppressed (0 for the outbox)."""
    if not isinstance(transport, SendGridTransport):
        return 0
    try:
        return pull_suppressions(transport, engine, now)
    except ValueError as exc:
        warn(f"{exc}: sending anyway, with the suppressions already stored")
        return 0


def pull_suppressions(transport: SendGridTransport, engine: Engine, now: datetime) -> int:
    """Copy SendGrid's bounces, spam reports, invalid emails and global unsubscribes.

    Returns how many addresses were newly suppressed. Raises nothing for SendGrid's
    or the network's failures: the caller warns and sends anyway (a ValueError
    carries the message).
    """
    added = 0
    for name, reason in SOURCES.items():
        for entry in _pages(transport, name):
            address = str(entry.get("email", ""))
            try:
                given, key = email_key(address)
            except EmailNotValidError:
                continue
            with engine.begin() as conn:
                added += audience.suppress(
                    conn, given, key, reason=reason, origin=f"sendgrid {name}", now=now
                )
    return added


def _pages(transport: SendGridTransport, name: str) -> list[dict[str, Any]]:
    endpoint = getattr(transport.client().client.suppression, name)
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        try:
            response = endpoint.get(query_params={"limit": PAGE, "offset": offset})
            page = json.loads(response.body or b"[]")
        except (HTTPError, OSError, ValueError) as exc:
            raise ValueError(f"could not read SendGrid's {name} ({exc})") from None
        if not isinstance(page, list):
            raise ValueError(f"SendGrid's {name} answer is not a list")
        found.extend(e for e in page if isinstance(e, dict))
        if len(page) < PAGE:
            return found
        offset += PAGE
