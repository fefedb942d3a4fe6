"""What a transport is given (one batch, personalised) and what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from digest.dispatch.personal import PersonalLinks
from digest.dispatch.variants import base_of
from digest.models import Attachment, Recipient, RenderedEmail

OutcomeKind = Literal["accepted", "retry", "failed", "uncertain", "split", "stop"]


@dataclass(frozen=True, slots=True)
class Addressee:
    recipient: Recipient
    list_slug: str
    links: PersonalLinks


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    edition_id: str
    seq: int
    variant: str  # "html" (text and HTML parts), "text", or "print:<profile>" (text + files)
    email: RenderedEmail
    addressees: list[Addressee]
    attachments: tuple[Attachment, ...] = ()
    deliver_at: datetime | None = None  # when the provider delivers it (None: at once)
    schedule: str | None = None  # the provider's batch of the edition's scheduled mail

    @property
    def with_html(self) -> bool:
        # A section variant of it ("html~events") has its HTML too.
        return base_of(self.variant) == "html"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a transport's attempt ended.

    accepted: the provider took it (message_id). retry: certainly not taken (429,
    5xx, no connection); ``wait`` seconds if the provider said when. failed: refused
    for good (reason). uncertain: the request went out and no answer came back.
    split: too large, cut it in two. stop: nothing can be sent (bad key).
    """

    kind: OutcomeKind
    message_id: str | None = None
    reason: str = ""
    wait: float | None = None


class Transport(Protocol):
    name: str

    def send(self, batch: OutgoingBatch) -> Outcome:
        """Deliver one batch (never raises for a provider's answer: it returns an Outcome)."""
        ...

    def new_schedule(self) -> str:
        """A new id for an edition's scheduled mail, so it can be cancelled together
        (DeliveryError when the provider refuses)."""
        ...

    def cancel_schedule(self, schedule: str) -> None:
        """Whatever of the scheduled mail is not delivered yet never is."""
        ...
