"""Sign-ups from the web form: always confirmed by email (double opt-in) before any mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from email_validator import EmailNotValidError
from sqlalchemy.engine import Connection

from digest.audience.addresses import email_key, subscriber_timezone
from digest.audience.importer import FORMATS
from digest.config import Settings
from digest.errors import AudienceError
from digest.store import audience as store
from digest.store import signups

if TYPE_CHECKING:
    from digest.context import App


@dataclass(frozen=True, slots=True)
class SignupRequest:
    subscriber_id: int
    email: str
    request_id: int
    lists: tuple[str, ...]  # what its confirmation confirms; empty when nothing is new


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
    invited_by: str | None = None,
    timezone: str | None = None,
) -> SignupRequest:
    """Record what they asked for as pending; nothing is sent to them but the confirmation.

    An address that left earlier may ask again: it stays suppressed until they confirm.
    ``invited_by``: a staff member asked on their behalf (any list; they still confirm).
    ``timezone`` (blank: the organisation's) is kept only for an address new to us: a sign-up
    nobody has confirmed never changes a known subscriber (their preferences page does).
    """
    settings, engine = app.settings, app.engine
    try:
        given, key = email_key(email)
    except EmailNotValidError as exc:
        raise AudienceError(f"{email!r} is not an email address: {exc}") from None
    allowed = [x.slug for x in settings.lists] if invited_by else public_lists(settings)
    chosen = [slug for slug in dict.fromkeys(lists) if slug in allowed]
    if not chosen:
        raise AudienceError("choose at least one list")
    if fmt not in FORMATS:
        raise AudienceError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if profile is not None and profile not in {p.name for p in settings.print.profiles}:
        profile = None
    zone = subscriber_timezone(timezone)
    _prepare_welcomes(app, chosen)
    with engine.begin() as conn:
        store.sync_lists(conn, settings.lists)
        source = f"invited by {invited_by}" if invited_by else "web form"
        subscriber_id, was_active = _subscriber_for(conn, given, key, name, zone, source, now)
        waiting = _ask_for(conn, subscriber_id, chosen, fmt, profile, now, was_active)
        request_id = signups.add_request(conn, subscriber_id, waiting, fmt, profile, now)
    return SignupRequest(subscriber_id, given, request_id, tuple(waiting))


def _prepare_welcomes(app: App, slugs: list[str]) -> None:
    """Set up the lists' welcome emails before anyone confirms (sent by the scheduler)."""
    from digest.lifecycle.welcome import prepare_welcomes

    prepare_welcomes(app, slugs)


def _subscriber_for(
    conn: Connection,
    given: str,
    key: str,
    name: str,
    zone: str | None,
    source: str,
    now: datetime,
) -> tuple[int, bool]:
    """The subscriber row of this address (a new pending one, with this name and timezone,
    if there is none), and whether it was active before."""
    sub = store.find_subscriber(conn, key)
    if sub is not None:
        if sub.status != store.ACTIVE:
            store.update_subscriber(conn, sub.id, status=store.PENDING)
        return sub.id, sub.status == store.ACTIVE
    ids = store.add_subscribers(
        conn,
        [
            {
                "email": given,
                "email_key": key,
                "name": " ".join(name.split())[:200],
                "status": store.PENDING,
                "source": source,
                "created": now,
                "timezone": zone,
            }
        ],
    )
    return ids[key], False


def _ask_for(
    conn: Connection,
    subscriber_id: int,
    chosen: list[str],
    fmt: str,
    profile: str | None,
    now: datetime,
    was_active: bool,
) -> list[str]:
    """The chosen lists this request has to confirm. A list new to them gets a pending
    membership; one they had (pending from another sign-up, or left) is left as it is until
    this request is confirmed, so one sign-up never changes another's choices."""
    members = store.memberships_of(conn, subscriber_id)
    had = {m.list_slug: m for m in members}
    waiting = []
    for slug in chosen:
        member = had.get(slug)
        if member is not None and member.status == store.ACTIVE and was_active:
            continue
        waiting.append(slug)
        if member is None:
            store.add_membership(
                conn, subscriber_id, slug, status=store.PENDING, fmt=fmt, profile=profile, now=now
            )
    return waiting
