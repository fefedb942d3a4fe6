"""A test copy: one message marked ``[TEST]`` to one address, of a draft alert or of any
stored edition (weekly or alert, in any state). Nothing goes in the ledger; the console
records it in Activity."""

from __future__ import annotations

from email_validator import EmailNotValidError

from digest.audience.addresses import email_key
from digest.context import App
from digest.dispatch.copies import send_copies
from digest.errors import DeliveryError
from digest.lifecycle.states import Kind, audience_of
from digest.models import Recipient, RenderedEmail
from digest.store import editions


def send_test(app: App, email: RenderedEmail, list_slug: str, address: str) -> str:
    """Send ``email`` once to ``address`` with its links as ``list_slug``'s; the address
    as written (DeliveryError when it is not an address)."""
    try:
        given, _ = email_key(address)
    except EmailNotValidError as exc:
        raise DeliveryError(f"test address {address!r} is not an email address: {exc}") from None
    send_copies(
        app,
        email,
        app.transport(),
        [Recipient(0, given, "")],
        list_slug=list_slug,
        mark="[TEST]",
        now=app.clock(),
        label="test",
    )
    return given


def send_edition_test(app: App, edition_id: str, address: str) -> str:
    """A test copy of a stored edition, as its first list's readers would get it."""
    with app.engine.connect() as conn:
        stored = editions.get_edition(conn, edition_id)
    if stored is None:
        raise DeliveryError(f"no edition or alert {edition_id!r}: see 'digest editions'")
    slugs = audience_of(app.settings, Kind(stored.kind), stored.list_slug)
    return send_test(app, stored.email, slugs[0], address)
