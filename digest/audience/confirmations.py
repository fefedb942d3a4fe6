"""Confirmation emails: queued by a sign-up, sent by the running server after the answer.

A sign-up only writes its request (so the answer takes the same time whoever asks); the
web app sends the email once the response has gone, and the scheduler's every-minute job
sends whatever is still waiting (the server stopped, SendGrid was down), a few times with
pauses, for as long as the link would work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from digest.audience.actions import confirmed_request
from digest.audience.tokens import EXPIRING
from digest.config import Settings
from digest.dispatch.copies import send_copies
from digest.errors import AudienceError, DigestError
from digest.models import Recipient, RenderedEmail
from digest.render.templates import text_env
from digest.render.text import wrap
from digest.store import audience as store
from digest.store import signups
from digest.store.signups import SignupRow

if TYPE_CHECKING:
    from digest.context import App

log = logging.getLogger(__name__)

LINK_WORKS_FOR = EXPIRING["confirm"]
TRIES = 5
PAUSES = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
# A claimed request is left alone this long, so a worker that died with it is taken over.
HOLD = timedelta(minutes=10)
FORMAT_WORDS = {"html": "email", "text": "plain-text email", "print": "printable edition"}


@dataclass(frozen=True, slots=True)
class Asked:
    """What one confirmation confirms, in words for the email and the confirm page."""

    lists: str  # "Weekly digest and Alerts"
    format: str  # "plain-text email"


def describe(settings: Settings, lists: tuple[str, ...], fmt: str) -> Asked:
    names = [x.name for slug in lists for x in settings.lists if x.slug == slug]
    said = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return Asked(said if names else "our emails", FORMAT_WORDS.get(fmt, ""))


def asked_by(app: App, token: str) -> Asked | None:
    """What a confirm link confirms (None when the link is not valid or has expired)."""
    claims = app.keys.check(token, "confirm", now=app.clock())
    if claims is None:
        return None
    with app.engine.connect() as conn:
        try:
            asked = confirmed_request(conn, claims)
        except AudienceError:
            return None
    return describe(app.settings, asked.lists, asked.format or "")


def send_confirmation(app: App, request_id: int) -> bool:
    """Send one request's confirmation if it is still waiting and nobody else has it."""
    now = app.clock()
    with app.engine.begin() as conn:
        if not signups.claim_request(conn, request_id, now, hold=HOLD):
            return False
        row = signups.get_request(conn, request_id)
        sub = store.subscriber_by_id(conn, row.subscriber_id) if row else None
    if row is None or sub is None:
        return False
    try:
        _deliver(app, row, Recipient(sub.id, sub.email, ""), now)
    except Exception as exc:  # whatever it was, this one waits and the others go on
        reason = str(exc) if isinstance(exc, DigestError) else f"unexpected {type(exc).__name__}"
        log.warning("confirmation %s not sent (try %s): %s", request_id, row.attempts, reason)
        log.debug("the confirmation's failure", exc_info=True)
        pause = PAUSES[min(row.attempts, len(PAUSES)) - 1]
        with app.engine.begin() as conn:
            signups.mark_failed(conn, request_id, reason, now + pause)
        return False
    with app.engine.begin() as conn:
        signups.mark_sent(conn, request_id, app.clock())
    return True


def send_waiting(app: App) -> int:
    """Every confirmation that is due (the scheduler's every-minute job)."""
    with app.engine.connect() as conn:
        due = signups.due_requests(conn, app.clock(), max_age=LINK_WORKS_FOR, tries=TRIES)
    return sum(send_confirmation(app, request_id) for request_id in due)


def _deliver(app: App, row: SignupRow, person: Recipient, now: datetime) -> None:
    settings = app.settings
    token = app.keys.make("confirm", row.subscriber_id, row.lists[0], now=row.created, ref=row.id)
    asked = describe(settings, row.lists, row.format)
    text = (
        text_env()
        .get_template("email/confirm.txt.j2")
        .render(
            org=settings.organisation,
            wrap=wrap,
            lists=asked.lists,
            format=asked.format,
            link=app.urls.confirm(token),
        )
    )
    email = RenderedEmail(f"Confirm: {settings.organisation.name}", "", text)
    send_copies(
        app,
        email,
        app.transport(now),
        [person],
        list_slug=row.lists[0],
        mark="",
        now=now,
        label="confirm",
        variant="text",
    )
