"""Sending an edition: pick the recipients, personalise, hand each message to the transport."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from digest.audience.tokens import keyring
from digest.config import Secrets, Settings
from digest.dispatch.message import build_message
from digest.dispatch.outbox import outbox_folder, write_eml
from digest.dispatch.personal import personal_links
from digest.errors import DeliveryError
from digest.models import Recipient
from digest.store import audience
from digest.store.editions import StoredEdition, get_edition

EMAIL_FORMATS = ("html", "text")


@dataclass(slots=True)
class SendPlan:
    edition: StoredEdition
    lists: list[str]
    recipients: list[Recipient]
    already_sent: set[int]

    @property
    def to_send(self) -> list[Recipient]:
        """Recipients of the email variants not sent this edition yet."""
        return [
            r
            for r in self.recipients
            if r.id not in self.already_sent and r.format in EMAIL_FORMATS
        ]

    @property
    def print_members(self) -> int:
        """Members who asked for the print edition, which this transport does not make yet."""
        return sum(1 for r in self.recipients if r.format not in EMAIL_FORMATS)

    @property
    def by_format(self) -> Counter[str]:
        return Counter(r.format for r in self.to_send)


@dataclass(slots=True)
class SendReport:
    plan: SendPlan
    folder: Path | None = None
    written: list[Path] = field(default_factory=list)


def plan_send(
    settings: Settings, engine: Engine, *, edition_id: str | None, list_slug: str | None
) -> SendPlan:
    """Which edition goes to whom (nobody twice, nobody already sent to)."""
    if list_slug is not None:
        slugs = [settings.list_named(list_slug).slug]
    else:
        slugs = [x.slug for x in settings.lists if x.kind == "digest"]
        if not slugs:
            raise DeliveryError(
                "no list of kind 'digest' in config.toml: add one under "
                "[[lists]] or pass --list NAME"
            )
    with engine.begin() as conn:
        audience.sync_lists(conn, settings.lists)
        edition = get_edition(conn, edition_id)
        if edition is None:
            if edition_id:
                raise DeliveryError(
                    f"edition {edition_id!r} has not been built: run "
                    f"'digest build --week {edition_id}' first"
                )
            raise DeliveryError("no edition has been built yet: run 'digest build' first")
        recipients = list(audience.recipients_for(conn, slugs))
        done = audience.delivered_ids(conn, edition.id)
    return SendPlan(edition, slugs, recipients, done)


def deliver(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    plan: SendPlan,
    *,
    now: datetime,
    on_sent: Callable[[Recipient], None] | None = None,
) -> SendReport:
    """Deliver the plan through the outbox; each recipient is recorded as soon as it is written."""
    if secrets.sendgrid_api_key:
        raise DeliveryError(
            "SENDGRID_API_KEY is set, but this version delivers only to the "
            "outbox: unset it to write .eml files under delivery.outbox_dir"
        )
    keys = keyring(
        secrets.secret_key, secrets.previous_secret_key, settings.var_dir, may_create=False
    )
    folder = outbox_folder(settings.resolve(settings.delivery.outbox_dir), plan.edition.id)
    report = SendReport(plan, folder)
    for recipient in plan.to_send:
        slug = recipient.lists[0] if recipient.lists else plan.lists[0]
        links = personal_links(settings, keys, recipient, slug, now=now)
        message = build_message(
            settings, plan.edition.email, recipient, links, list_slug=slug, now=now
        )
        report.written.append(write_eml(folder, recipient.id, recipient.email, message))
        with engine.begin() as conn:
            audience.record_delivery(
                conn,
                plan.edition.id,
                recipient.id,
                transport="outbox",
                message_id=str(message["Message-ID"]),
                now=now,
            )
        if on_sent:
            on_sent(recipient)
    return report
