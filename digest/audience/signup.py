"""Sign-ups from the web form: always confirmed by email (double opt-in) before any mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from email_validator import EmailNotValidError
from sqlalchemy.engine import Connection

from digest.audience.addresses import email_key
from digest.audience.importer import FORMATS
from digest.config import Settings
from digest.errors import AudienceError
from digest.store import audience as store

if TYPE_CHECKING:
    from digest.context import App


@dataclass(frozen=True, slots=True)
class SignupRequest:
    subscriber_id: int
    email: str
    list_slug: str  # the first list waiting for confirmation
    needs_confirmation: bool


def public_lists(settings: Settings) -> list[str]:
    """Lists people may join from the web (not the staff preview list)."""
    return [x.slug for x in settings.lists if x.slug != settings.edition.preview_list]


def request_subscription(
    app: App,
    *,
    email: str,
    name: str,
    lists: list[str],
    fmt: str,
    profile: str | None,
    now: datetime,
) -> SignupRequest:
    """Record what they asked for as pending; nothing is sent to them but the confirmation.

    An address that left earlier may ask again: it stays suppressed until they confirm.
    """
    settings, engine = app.settings, app.engine
    try:
        given, key = email_key(email)
    except EmailNotValidError as exc:
        raise AudienceError(f"{email!r} is not an email address: {exc}") from None
    allowed = public_lists(settings)
    chosen = [slug for slug in dict.fromkeys(lists) if slug in allowed]
    if not chosen:
        raise AudienceError("choose at least one list")
    if fmt not in FORMATS:
        raise AudienceError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if profile is not None and profile not in {p.name for p in settings.print.profiles}:
        profile = None
    with engine.begin() as conn:
        store.sync_lists(conn, settings.lists)
        sub = store.find_subscriber(conn, key)
        if sub is None:
            ids = store.add_subscribers(
                conn,
                [
                    {
                        "email": given,
                        "email_key": key,
                        "name": " ".join(name.split())[:200],
                        "status": store.PENDING,
                        "source": "web form",
                        "created": now,
                    }
                ],
            )
            subscriber_id = ids[key]
        else:
            subscriber_id = sub.id
            if sub.status != store.ACTIVE:
                store.update_subscriber(conn, sub.id, status=store.PENDING)
        waiting = _ask_for(conn, subscriber_id, chosen, fmt, profile, now)
    first = waiting[0] if waiting else chosen[0]
    return SignupRequest(
        subscriber_id, given, first, bool(waiting) or sub is None or sub.status != store.ACTIVE
    )


def _ask_for(
    conn: Connection,
    subscriber_id: int,
    chosen: list[str],
    fmt: str,
    profile: str | None,
    now: datetime,
) -> list[str]:
    waiting = []
    for slug in chosen:
        member = store.list_memberships(conn, slug, [subscriber_id]).get(subscriber_id)
        if member is None:
            store.add_memberships(
                conn,
                [
                    {
                        "subscriber_id": subscriber_id,
                        "list_slug": slug,
                        "status": store.PENDING,
                        "format": fmt,
                        "profile": profile,
                        "created": now,
                    }
                ],
            )
            waiting.append(slug)
        elif member.status != store.ACTIVE:
            store.update_membership(
                conn,
                subscriber_id,
                slug,
                status=store.PENDING,
                format=fmt,
                profile=profile,
                changed=now,
            )
            waiting.append(slug)
    return waiting
