"""What a transport is given (one batch, personalised) and what it answers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, overload

from digest.dispatch.personal import LinkMaker, PersonalLinks
from digest.dispatch.variants import base_of
from digest.models import Attachment, Recipient, RenderedEmail
from digest.store.ledger import RecipientRow

OutcomeKind = Literal["accepted", "retry", "failed", "uncertain", "split", "stop"]


@dataclass(frozen=True, slots=True)
class Addressee:
    recipient: Recipient
    list_slug: str
    links: PersonalLinks


class LedgerPeople(Sequence[Addressee]):
    """A claimed batch's recipients: the ledger's rows and the batch's link maker. The
    SendGrid payload is built from the rows and their tokens straight (:meth:`tokens`);
    an :class:`Addressee` is made only for whoever asks for one (the outbox)."""

    __slots__ = ("format", "maker", "rows")

    def __init__(self, rows: Sequence[RecipientRow], maker: LinkMaker, format_: str) -> None:
        self.rows, self.maker, self.format = rows, maker, format_  # the batch's: format_of

    def links(self) -> list[tuple[str, str, str]]:
        """Each row's unsubscribe URL, preferences URL and List-Unsubscribe header."""
        return self.maker.each(self._people())

    def tokens(self) -> list[tuple[str, str]]:
        """Each row's unsubscribe and preferences tokens (:meth:`LinkMaker.tokens`)."""
        return self.maker.tokens(self._people())

    def _people(self) -> list[tuple[int, str]]:
        return [(row[0], row[3]) for row in self.rows]  # (subscriber id, list)

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Addressee: ...

    @overload
    def __getitem__(self, index: slice) -> list[Addressee]: ...

    def __getitem__(self, index: int | slice) -> Addressee | list[Addressee]:
        if isinstance(index, slice):
            return [self._one(row) for row in self.rows[index]]
        return self._one(self.rows[index])

    def __iter__(self) -> Iterator[Addressee]:
        return map(self._one, self.rows)

    def _one(self, row: RecipientRow) -> Addressee:
        subscriber_id, email, name, list_slug = row
        recipient = Recipient(subscriber_id, email, name, self.format, (list_slug,))
        return Addressee(recipient, list_slug, self.maker.links(subscriber_id, list_slug))


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    edition_id: str
    seq: int
    variant: str  # "html" (text and HTML parts), "text", or "print:<profile>" (text + files)
    email: RenderedEmail
    addressees: Sequence[Addressee]  # a LedgerPeople when the ledger's batch
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
