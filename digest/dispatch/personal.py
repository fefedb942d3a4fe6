"""Per-recipient values: signed links, substitutions and the List-Unsubscribe header."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from digest.audience.tokens import Keyring
from digest.config import Settings
from digest.models import Recipient
from digest.render import NAME, PREFERENCES, UNSUBSCRIBE
from digest.urls import Urls


@dataclass(frozen=True, slots=True)
class PersonalLinks:
    unsubscribe_url: str
    preferences_url: str
    list_unsubscribe: str  # the header value: https URL and mailto

    def substitutions(self, recipient: Recipient) -> dict[str, str]:
        """Placeholder → value, the same names SendGrid substitutions use."""
        return {
            UNSUBSCRIBE: self.unsubscribe_url,
            PREFERENCES: self.preferences_url,
            NAME: recipient.name,
        }


def personal_links(
    settings: Settings, keys: Keyring, recipient: Recipient, list_slug: str, *, now: datetime
) -> PersonalLinks:
    """Signed unsubscribe and preferences links for one recipient of one list."""
    urls = Urls(settings.delivery.base_url)
    unsub = keys.make("unsubscribe", recipient.id, list_slug, now=now)
    prefs = keys.make("preferences", recipient.id, list_slug, now=now)
    mailbox = (
        settings.delivery.unsubscribe_mailto
        or settings.organisation.reply_to
        or settings.delivery.from_email
    ).removeprefix("mailto:")
    unsubscribe_url = urls.unsubscribe(unsub)
    # Tokens are base64url and "." only: nothing in them needs escaping in a mailto.
    header = f"<{unsubscribe_url}>, <mailto:{mailbox}?subject=unsubscribe%20{unsub}>"
    return PersonalLinks(unsubscribe_url, urls.preferences(prefs), header)


def fill(body: str, values: dict[str, str], *, as_html: bool) -> str:
    """Replace each placeholder; values are escaped for an HTML body."""
    for placeholder, value in values.items():
        body = body.replace(placeholder, html.escape(value) if as_html else value)
    return body
