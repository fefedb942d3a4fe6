"""Single copies outside the ledger: a test send, or the staff preview of an edition."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from digest.dispatch.batch import Addressee, OutgoingBatch, Transport
from digest.dispatch.personal import personal_links
from digest.errors import DeliveryError
from digest.models import Recipient, RenderedEmail

if TYPE_CHECKING:
    from digest.context import App


def send_copies(
    app: App,
    email: RenderedEmail,
    transport: Transport,
    people: Iterable[Recipient],
    *,
    list_slug: str,
    mark: str,
    now: datetime,
    label: str,
    variant: str = "html",
) -> int:
    """One copy each, the subject marked (``[TEST]``, ``[PREVIEW]``); nothing in the ledger."""
    settings, keys = app.settings, app.keys
    marked = RenderedEmail(f"{mark} {email.subject}".strip(), email.html, email.text)
    addressees = [
        Addressee(person, list_slug, personal_links(settings, keys, person, list_slug, now=now))
        for person in people
    ]
    if not addressees:
        return 0
    batch = OutgoingBatch(label, 0, variant, marked, addressees)
    outcome = transport.send(batch)
    if outcome.kind != "accepted":
        raise DeliveryError(f"the {label} copy was not accepted ({outcome.kind}): {outcome.reason}")
    return len(addressees)
