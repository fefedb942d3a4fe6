"""The outbox transport: one .eml file per recipient, for when there is no SendGrid key."""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from digest.config import Settings
from digest.dispatch.batch import Outcome, OutgoingBatch
from digest.dispatch.message import build_message
from digest.errors import DeliveryError

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")
SCHEDULED = ".scheduled-"  # the listing of one schedule's messages and their times


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
        """Each message dated when it is delivered; a scheduled one is listed under its
        schedule, so a cancel can take back what is not delivered yet."""
        folder = self.folder(batch.edition_id)
        written = []
        for person in batch.addressees:
            message = build_message(
                self.settings,
                batch.email,
                person.recipient,
                person.links,
                list_slug=person.list_slug,
                now=batch.deliver_at or self.now,
                with_html=batch.with_html,
                attachments=batch.attachments,
            )
            written.append(write_eml(folder, person.recipient.id, person.recipient.email, message))
        if batch.schedule and batch.deliver_at:
            lines = "".join(f"{batch.deliver_at.isoformat()}\t{p.name}\n" for p in written)
            with (folder / f"{SCHEDULED}{batch.schedule}").open("a", encoding="utf-8") as out:
                out.write(lines)  # one append per batch: the workers' lines never mix
        return Outcome("accepted", message_id=f"outbox:{batch.edition_id}:{batch.seq}")

    def new_schedule(self) -> str:
        return f"outbox-{uuid.uuid4().hex}"

    def cancel_schedule(self, schedule: str) -> None:
        """Messages of the schedule not delivered yet move to ``cancelled/`` beside them."""
        for listing in self.root.glob(f"*/{SCHEDULED}{schedule}"):
            for line in listing.read_text(encoding="utf-8").splitlines():
                at, _, name = line.partition("\t")
                source = listing.parent / name
                if datetime.fromisoformat(at) > self.now and source.exists():
                    (listing.parent / "cancelled").mkdir(exist_ok=True)
                    os.replace(source, listing.parent / "cancelled" / name)
