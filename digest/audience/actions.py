"""What a subscriber can do from a link in any email, no password: the web app calls these.

Each is idempotent: the same link used twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine

from digest.audience.addresses import subscriber_timezone
from digest.audience.importer import FORMATS
from digest.audience.members import leave_everything
from digest.audience.tokens import Keyring, TokenClaims
from digest.config import Settings
from digest.errors import AudienceError
from digest.store import audience as store
from digest.store import signups, unsubscribes

if TYPE_CHECKING:
    from digest.context import App


@dataclass(frozen=True, slots=True)
class ActionResult:
    email: str
    list_slug: str
    changed: bool


def _claims(keys: Keyring, token: str, purpose: str, now: datetime) -> TokenClaims:
    claims = keys.check(token, purpose, now=now)
    if claims is None:
        raise AudienceError(
            f"this {purpose} link is not valid (it may be incomplete, "
            "or too old): use the link in a newer email"
        )
    return claims


def _verified(
    conn: Connection, keys: Keyring, token: str, purpose: str, now: datetime
) -> tuple[TokenClaims, Any]:
    claims = _claims(keys, token, purpose, now)
    sub = store.subscriber_by_id(conn, claims.subscriber_id)
    if sub is None:
        raise AudienceError(f"this {purpose} link belongs to an address we no longer hold")
    return claims, sub


def unsubscribe(
    engine: Engine, keys: Keyring, token: str, *, now: datetime, origin: str = "unsubscribe link"
) -> ActionResult:
    """Leave the token's list. When no list is left, the address is suppressed."""
    with engine.begin() as conn:
        return unsubscribe_on(conn, keys, token, now=now, origin=origin)


def unsubscribe_on(
    conn: Connection,
    keys: Keyring,
    token: str,
    *,
    now: datetime,
    origin: str = "unsubscribe link",
) -> ActionResult:
    """:func:`unsubscribe` inside ``conn``'s open transaction (the web app's writer commits
    it with others): one read for the subscriber and their lists, then the membership and,
    when it was their last list, the subscriber and their suppression; nothing written when
    it is done already."""
    return unsubscribe_claimed(
        conn, _claims(keys, token, "unsubscribe", now), now=now, origin=origin
    )


def unsubscribe_claimed(
    conn: Connection, claims: TokenClaims, *, now: datetime, origin: str
) -> ActionResult:
    """:func:`unsubscribe_on` for a token already checked (``Keyring.check``)."""
    who = unsubscribes.read(conn, claims.subscriber_id)
    if who is None:
        raise AudienceError("this unsubscribe link belongs to an address we no longer hold")
    sid, slug = claims.subscriber_id, claims.list_slug
    changed = who.lists.get(slug, store.UNSUBSCRIBED) != store.UNSUBSCRIBED
    if changed:
        unsubscribes.leave_list(conn, sid, slug, now)
    still_on = any(s != store.UNSUBSCRIBED for k, s in who.lists.items() if k != slug)
    if not still_on and who.status not in store.GONE:
        unsubscribes.leave_everything(conn, sid, who, reason="unsubscribed", origin=origin, now=now)
        changed = True
    return ActionResult(who.email, slug, changed)


def confirm(engine: Engine, keys: Keyring, token: str, *, now: datetime) -> ActionResult:
    """Double opt-in: the subscriber and the lists of the token's sign-up request (only
    those) become active, in the format that request chose."""
    with engine.begin() as conn:
        claims, sub = _verified(conn, keys, token, "confirm", now)
        asked = confirmed_request(conn, claims)
        sup = store.suppression_of(conn, sub.email_key, keys.forgotten)
        left_at = sup.created if sup is not None else sub.unsubscribed
        if left_at is not None and left_at > claims.issued + timedelta(seconds=1):
            raise AudienceError("this address has unsubscribed since: subscribe again")
        changed = False
        if sup is not None:  # they left (or were forgotten), asked again, confirmed: so be it
            store.lift_suppression(conn, sub.email_key, keys.forgotten)
        if sub.status != store.ACTIVE:
            store.update_subscriber(
                conn, sub.id, status=store.ACTIVE, confirmed=now, unsubscribed=None
            )
            changed = True
        for slug in asked.lists:
            changed |= _activate(conn, sub.id, slug, asked, now)
        if asked.id is not None and changed:
            signups.mark_confirmed(conn, asked.id, now)
    return ActionResult(sub.email, claims.list_slug, changed)


@dataclass(frozen=True, slots=True)
class AskedFor:
    """What a confirm token confirms: its request's lists and format (an older token made
    before requests were kept: its own list, as it is)."""

    id: int | None
    lists: tuple[str, ...]
    format: str | None = None
    profile: str | None = None


def confirmed_request(conn: Connection, claims: TokenClaims) -> AskedFor:
    if claims.ref is None:
        return AskedFor(None, (claims.list_slug,))
    row = signups.get_request(conn, claims.ref)
    if row is None or row.subscriber_id != claims.subscriber_id:
        raise AudienceError("this confirmation link is for a request we no longer hold")
    return AskedFor(row.id, row.lists, row.format, row.profile)


def _activate(
    conn: Connection, subscriber_id: int, slug: str, asked: AskedFor, now: datetime
) -> bool:
    member = store.list_memberships(conn, slug, [subscriber_id]).get(subscriber_id)
    choice = {"format": asked.format, "profile": asked.profile} if asked.format else {}
    if member is None:
        store.add_membership(
            conn,
            subscriber_id,
            slug,
            status=store.ACTIVE,
            fmt=asked.format or "html",
            profile=asked.profile,
            now=now,
        )
        return True
    if member.status == store.ACTIVE:
        return False
    return store.update_membership(
        conn, subscriber_id, slug, status=store.ACTIVE, changed=now, **choice
    )


def set_preferences(
    app: App,
    token: str,
    *,
    lists: Mapping[str, bool] | None = None,
    fmt: str | None = None,
    profile: str | None = None,
    leave_all: bool = False,
    timezone: str | None = None,
    now: datetime,
) -> ActionResult:
    """Join or leave lists, change format, print profile or timezone (``""``: back to the
    organisation's; None: as it is), or leave everything."""
    settings, engine, keys = app.settings, app.engine, app.keys
    _check_choices(settings, lists or {}, fmt, profile)
    zone = subscriber_timezone(timezone) if timezone is not None else None
    with engine.begin() as conn:
        store.sync_lists(conn, settings.lists)
        claims, sub = _verified(conn, keys, token, "preferences", now)
        if leave_all:
            changed = sub.status not in store.GONE
            leave_everything(conn, sub, reason="unsubscribed", origin="preferences", now=now)
            return ActionResult(sub.email, claims.list_slug, changed)
        changed = timezone is not None and zone != sub.timezone
        if changed:
            store.update_subscriber(conn, sub.id, timezone=zone)
        for slug, wanted in (lists or {}).items():
            changed |= _set_member(conn, sub, slug, wanted, fmt, now, keys.forgotten)
        updates = {k: v for k, v in (("format", fmt), ("profile", profile)) if v is not None}
        for member in store.memberships_of(conn, sub.id):
            if any(getattr(member, k) != v for k, v in updates.items()):
                store.update_membership(conn, sub.id, member.list_slug, changed=now, **updates)
                changed = True
    return ActionResult(sub.email, claims.list_slug, changed)


def _check_choices(
    settings: Settings, lists: Mapping[str, bool], fmt: str | None, profile: str | None
) -> None:
    for slug in lists:
        settings.list_named(slug)
    if fmt is not None and fmt not in FORMATS:
        raise AudienceError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if profile is not None and profile not in {p.name for p in settings.print.profiles}:
        raise AudienceError(f"profile {profile!r} is not a print profile")


def _set_member(
    conn: Connection,
    sub: Any,
    slug: str,
    wanted: bool,
    fmt: str | None,
    now: datetime,
    marks: store.Marks,
) -> bool:
    member = store.list_memberships(conn, slug, [sub.id]).get(sub.id)
    if not wanted:
        if member is None or member.status == store.UNSUBSCRIBED:
            return False
        return store.update_membership(conn, sub.id, slug, status=store.UNSUBSCRIBED, changed=now)
    if sub.status in store.GONE or store.suppression_of(conn, sub.email_key, marks) is not None:
        raise AudienceError("this address has left every list: subscribe again to join one")
    if member is None:
        store.add_membership(
            conn, sub.id, slug, status=store.ACTIVE, fmt=fmt or "html", profile=None, now=now
        )
        return True
    if member.status != store.ACTIVE:
        return store.update_membership(conn, sub.id, slug, status=store.ACTIVE, changed=now)
    return False
