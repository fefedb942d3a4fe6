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


@dataclass(frozen=True, slots=True)
class LinkMaker:
    """What every recipient's links in one batch share, worked out once: the keys, the
    server's address, the unsubscribe mailbox and the tokens' time."""

    keys: Keyring
    urls: Urls
    mailbox: str
    issued: int  # the tokens' time, whole seconds

    @classmethod
    def at(cls, settings: Settings, keys: Keyring, now: datetime) -> LinkMaker:
        mailbox = (
            settings.delivery.unsubscribe_mailto
            or settings.organisation.reply_to
            or settings.delivery.from_email
        ).removeprefix("mailto:")
        return cls(keys, Urls(settings.delivery.base_url), mailbox, int(now.timestamp()))

    def links(self, subscriber_id: int, list_slug: str) -> PersonalLinks:
        """Signed unsubscribe and preferences links for one recipient of one list."""
        return PersonalLinks(*self.each([(subscriber_id, list_slug)])[0])

    def each(self, people: list[tuple[int, str]]) -> list[tuple[str, str, str]]:
        """:meth:`links` of many (subscriber id, list) as plain tuples (unsubscribe URL,
        preferences URL, List-Unsubscribe header): a batch's thousand, without an object
        each. The SendGrid payload builds the same from :meth:`starts` and :meth:`tokens`
        in its own loop (tests/test_delivery_rows.py holds the two to the same bytes)."""
        unsubscribe, preferences, mailto = self.starts()
        out: list[tuple[str, str, str]] = []
        append = out.append
        for unsub, prefs in self.tokens(people):
            url = unsubscribe + unsub
            append((url, preferences + prefs, list_unsubscribe(url, mailto, unsub)))
        return out

    def starts(self) -> tuple[str, str, str]:
        """What the links begin with, before their token: the unsubscribe URL, the
        preferences URL and the List-Unsubscribe header's mailto. A link is its start and
        its token; the header is :func:`list_unsubscribe`'s."""
        mailto = f"mailto:{self.mailbox}?subject=unsubscribe%20"
        return self.urls.unsubscribe(""), self.urls.preferences(""), mailto

    def tokens(self, people: list[tuple[int, str]]) -> list[tuple[str, str]]:
        """The unsubscribe and preferences tokens of many (subscriber id, list), in order."""
        return self.keys.pairs_at("unsubscribe", "preferences", people, self.issued)


def list_unsubscribe(unsubscribe_url: str, mailto: str, unsubscribe_token: str) -> str:
    """The List-Unsubscribe header: ``<unsubscribe URL>, <mailto + unsubscribe token>``
    (tokens are base64url and "." only: nothing in them needs escaping in a mailto)."""
    return f"<{unsubscribe_url}>, <{mailto}{unsubscribe_token}>"


def personal_links(
    settings: Settings, keys: Keyring, recipient: Recipient, list_slug: str, *, now: datetime
) -> PersonalLinks:
    """Signed unsubscribe and preferences links for one recipient of one list."""
    return LinkMaker.at(settings, keys, now).links(recipient.id, list_slug)


def fill(body: str, values: dict[str, str], *, as_html: bool) -> str:
    """Replace each placeholder; values are escaped for an HTML body."""
    for placeholder, value in values.items():
        body = body.replace(placeholder, html.escape(value) if as_html else value)
    return body
