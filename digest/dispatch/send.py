"""Sending an edition: choose the transport, then let the workers deliver the planned batches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from digest.audience.tokens import keyring
from digest.config import Secrets, Settings
from digest.dispatch.batch import Outcome, Transport
from digest.dispatch.outbox import OutboxTransport
from digest.dispatch.plan import SendPlan
from digest.dispatch.run import RunReport, SendRun, deliver_all, mark_abandoned
from digest.dispatch.sendgrid import SendGridTransport
from digest.store import ledger


def choose_transport(settings: Settings, secrets: Secrets, now: datetime) -> Transport:
    """SendGrid when SENDGRID_API_KEY is set; the outbox of .eml files otherwise."""
    if secrets.sendgrid_api_key:
        return SendGridTransport(settings, secrets.sendgrid_api_key, secrets.sendgrid_host)
    return OutboxTransport(settings, now)


def deliver(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    plan: SendPlan,
    transport: Transport,
    *,
    clock: Callable[[], datetime],
    stop: threading.Event | None = None,
    resend_uncertain: bool = False,
    on_batch: Callable[[int, Outcome, int], None] | None = None,
) -> RunReport:
    """Send every pending batch of the plan's edition; failed ones are tried again.

    Batches left in flight by a process that died become uncertain and are sent
    again only with ``resend_uncertain`` (staff decided duplicates beat silence).
    """
    keys = keyring(
        secrets.secret_key, secrets.previous_secret_key, settings.var_dir, may_create=False
    )
    edition_id = plan.edition.id
    now = clock()
    mark_abandoned(engine, edition_id, now)
    with engine.begin() as conn:
        ledger.requeue(conn, edition_id, ledger.FAILED, now)
        if resend_uncertain:
            ledger.requeue(conn, edition_id, ledger.UNCERTAIN, now)
    run = SendRun(
        settings,
        engine,
        edition_id,
        plan.edition.email,
        keys,
        transport,
        clock,
        stop or threading.Event(),
        on_batch,
    )
    return deliver_all(run)
