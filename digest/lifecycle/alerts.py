"""An alert's life: drafted (rendered, its audience counted), stored to go now or at a
time, sent by the one send function, or cancelled while it waits.

A scheduled alert is a row in ``scheduled`` with its ``send_at``; the running
``digest serve`` looks every minute for those whose time has come (``send_due``), so
cancelling one is a state change and nothing else.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.alert import render_alert
from digest.config import Settings
from digest.context import App
from digest.errors import DeliveryError
from digest.lifecycle.deliveries import cancel_scheduled
from digest.lifecycle.failures import report_failure
from digest.lifecycle.sending import send
from digest.lifecycle.states import (
    DELIVERED,
    HeldByChecks,
    Kind,
    State,
    audience_of,
    state_of,
    store_edition,
    transition,
)
from digest.lifecycle.test_copies import send_test
from digest.models import Edition, RenderedEmail
from digest.store import audience, editions

log = logging.getLogger(__name__)
ALERT_ID = re.compile(r"^alert-\d{8}-\d{6}$")


def alert_id(now: datetime) -> str:
    """Alerts get their own ids, apart from the weekly ``2026-W48`` ones."""
    return f"alert-{now:%Y%m%d-%H%M%S}"


@dataclass(frozen=True, slots=True)
class AlertDraft:
    id: str
    email: RenderedEmail
    list_slug: str | None  # None: every list of kind alerts
    slugs: list[str]
    recipients: int


def draft_alert(
    app: App, subject: str, markdown: str, list_slug: str | None, *, ident: str | None = None
) -> AlertDraft:
    """Render the alert and count who it would reach; nothing is stored."""
    now = app.clock()
    ident = ident or alert_id(now)
    slugs = audience_of(app.settings, Kind.ALERT, list_slug)
    email = render_alert(app.settings, app.urls, subject, markdown, alert=ident, now=now)
    with app.engine.begin() as conn:
        audience.sync_lists(conn, app.settings.lists)
        count = sum(1 for _ in audience.recipients_for(conn, slugs))
    return AlertDraft(ident, email, list_slug, slugs, count)


def send_alert_test(app: App, draft: AlertDraft, address: str) -> str:
    """One copy of the draft, marked [TEST], to one address; the address."""
    return send_test(app, draft.email, draft.slugs[0], address)


def store_alert(app: App, draft: AlertDraft, *, who: str, at: datetime | None = None) -> None:
    """Keep the alert like an edition (ledger, status and archive know it): built to go
    now, or scheduled for ``at``."""
    now = app.clock()
    record = Edition(
        id=draft.id,
        subject=draft.email.subject,
        preheader="",
        since=now,
        cutoff=now,
        editor_note=None,
        sections=(),
        archive_url=app.urls.archive(draft.id),
    )
    with app.engine.begin() as conn:
        if state_of(conn, draft.id) is not None:
            raise DeliveryError(f"alert {draft.id} is stored already: see 'digest editions'")
        store_edition(
            conn,
            record,
            draft.email,
            kind=Kind.ALERT,
            who=who,
            now=now,
            to=State.BUILT if at is None else State.SCHEDULED,
            list_slug=draft.list_slug,
            send_at=at,
            note="" if at is None else f"to go at {at.isoformat(timespec='minutes')}",
        )


def send_due(app: App, *, stop: threading.Event | None = None) -> list[str]:
    """Scheduled alerts whose time has come go out; one past the grace period is missed
    (an action alert days late does more harm than good: staff decide)."""
    now = app.clock()
    grace = timedelta(minutes=app.settings.schedule.grace_minutes)
    with app.engine.connect() as conn:
        due = editions.due_at(conn, State.SCHEDULED, now)
    for edition_id, at in due:
        if now - at > grace:
            note = (
                f"due {at.isoformat(timespec='minutes')}, but digest serve was not running: "
                f"send it by hand with 'digest send --edition {edition_id}'"
            )
            with app.engine.begin() as conn:
                transition(conn, edition_id, State.MISSED, who="scheduler", now=now, note=note)
            log.warning("alert %s: %s", edition_id, note)
            continue
        try:
            send(app, edition_id, who="scheduler", stop=stop, notify=True)
        except HeldByChecks as exc:  # staff are told, and decide
            report_failure(app, edition_id, str(exc), who="scheduler", notify=True)
        except Exception as exc:  # recorded and mailed by send; the next one still goes
            log.error("alert %s: the scheduled send failed: %s", edition_id, exc)
    return [edition_id for edition_id, _ in due]


def cancel(app: App, edition_id: str, *, who: str, note: str = "") -> str:
    """A scheduled alert, or an approved edition whose send has not started, never goes;
    of a sent one, what waits for its delivery time never goes. Returns what stopped."""
    with app.engine.begin() as conn:
        state = state_of(conn, edition_id)
        if state is None:
            raise DeliveryError(f"no edition or alert {edition_id!r}: see 'digest editions'")
        if state not in DELIVERED:
            transition(conn, edition_id, State.CANCELLED, who=who, now=app.clock(), note=note)
            return "it will not be sent"
    return cancel_scheduled(app, edition_id, who=who, note=note)


def parse_at(text: str, settings: Settings, now: datetime, *, name: str = "--at") -> datetime:
    """When a scheduled alert goes: an ISO date and time, or HH:MM (the next such time), in
    the organisation's zone. ``name`` is what the message calls the field."""
    zone = settings.organisation.zone
    local_now = now.astimezone(zone)
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(x) for x in text.split(":"))
            at = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if at <= local_now:
                at += timedelta(days=1)
        else:
            at = datetime.fromisoformat(text)
            at = at if at.tzinfo else at.replace(tzinfo=zone)
    except ValueError:
        raise DeliveryError(
            f"{name} {text!r} is not a time: write 18:30 or 2026-12-01T18:30"
        ) from None
    if at <= now:
        raise DeliveryError(f"{name} {text} is in the past: leave {name} out to send now")
    return at
