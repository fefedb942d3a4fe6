"""The outbox transport: one .eml file per recipient, for when there is no SendGrid key."""

from __future__ import annotations

import os
import re
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from digest.config import Settings
from digest.dispatch.batch import Outcome, OutgoingBatch
from digest.dispatch.message import build_message
from digest.errors import DeliveryError

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def outbox_folder(root: Path, edition_id: str) -> Path:
    return root / _UNSAFE.sub("_", edition_id)


def write_eml(folder: Path, subscriber_id: int, email: str, message: EmailMessage) -> Path:
    """Write one message atomically (a reader never sees half a file)."""
    path = folder / f"{subscriber_id:07d}-{_UNSAFE.sub('_', email)[:80]}.eml"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(message.as_bytes())
        os.replace(tmp, path)
    except OSError as exc:
        raise DeliveryError(
            f"cannot write to the outbox {folder} ({exc.strerror}): check delivery.outbox_dir"
        ) from None
    return path


class OutboxTransport:
    """Writes each message of a batch to ``delivery.outbox_dir/<edition>/``."""

    name = "outbox"

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.settings = settings
        self.root = settings.resolve(settings.delivery.outbox_dir)
        self.now = now

    def folder(self, edition_id: str) -> Path:
        return outbox_folder(self.root, edition_id)

    def send(self, batch: OutgoingBatch) -> Outcome:
        folder = self.folder(batch.edition_id)
        for person in batch.addressees:
            message = build_message(
                self.settings,
                batch.email,
                person.recipient,
                person.links,
                list_slug=person.list_slug,
                now=self.now,
                with_html=batch.with_html,
                attachments=batch.attachments,
            )
            write_eml(folder, person.recipient.id, person.recipient.email, message)
        return Outcome("accepted", message_id=f"outbox:{batch.edition_id}:{batch.seq}")
