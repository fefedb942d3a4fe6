"""Staff actions on one subscriber, and the lists at a glance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from email_validator import EmailNotValidError
from sqlalchemy.engine import Connection, Engine

from digest.audience.addresses import email_key, subscriber_timezone
from digest.audience.forgotten import marks_of
from digest.audience.importer import FORMATS
from digest.errors import AudienceError
from digest.store import audience as store
from digest.store.mailing import MailingAddress, address_of

if TYPE_CHECKING:
    from digest.context import App


@dataclass(frozen=True, slots=True)
class Membership:
    list_slug: str
    status: str
    format: str
    profile: str | None
    sections: tuple[str, ...] | None = None  # the sections they chose; None: every one


@dataclass(frozen=True, slots=True)
class SubscriberDetails:
    id: int
    email: str
    name: str
    status: str
    source: str
    created: datetime
    confirmed: datetime | None
    unsubscribed: datetime | None
    memberships: list[Membership] = field(default_factory=list)
    suppression: dict[str, str] | None = None
    mailing_address: MailingAddress | None = None  # for paper posted inside
    timezone: str | None = None  # their IANA name; None: the organisation's

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "status": self.status,
            "source": self.source,
            "created": self.created.isoformat(),
            "confirmed": self.confirmed.isoformat() if self.confirmed else None,
            "unsubscribed": self.unsubscribed.isoformat() if self.unsubscribed else None,
            "timezone": self.timezone,
            "lists": [
                {"list": m.list_slug, "status": m.status, "format": m.format, "profile": m.profile}
                for m in self.memberships
            ],
            "suppressed": self.suppression,
            "mailing_address": self.mailing_address.values() if self.mailing_address else None,
        }

    def mailing_line(self) -> str:
        """The address as one line of its envelope lines, saying what it lacks."""
        if self.mailing_address is None:
            return "none"
        missing = self.mailing_address.missing()
        gaps = f" (incomplete: no {', '.join(missing)})" if missing else ""
        return " / ".join(self.mailing_address.lines(self.name)) + gaps


def _key(address: str) -> tuple[str, str]:
    try:
        return email_key(address)
    except EmailNotValidError as exc:
        raise AudienceError(f"{address!r} is not an email address: {exc}") from None


def _require(conn: Connection, address: str) -> Any:
    _, key = _key(address)
    sub = store.find_subscriber(conn, key)
    if sub is None:
        raise AudienceError(f"no subscriber {address!r}: check the spelling, or add them first")
    return sub


def details(engine: Engine, address: str, marks: store.Marks = store.no_marks) -> SubscriberDetails:
    """Everything stored about one subscriber (``marks``: to show a forgotten mark left
    before they signed up again)."""
    with engine.connect() as conn:
        return _details(conn, _require(conn, address), marks)


def details_by_id(
    conn: Connection, subscriber_id: int, marks: store.Marks = store.no_marks
) -> SubscriberDetails | None:
    sub = store.subscriber_by_id(conn, subscriber_id)
    return _details(conn, sub, marks) if sub is not None else None


def _details(conn: Connection, sub: Any, marks: store.Marks) -> SubscriberDetails:
    rows = store.memberships_of(conn, sub.id)
    sup = store.suppression_of(conn, sub.email_key, marks)
    return SubscriberDetails(
        sub.id,
        sub.email,
        sub.name,
        sub.status,
        sub.source,
        sub.created,
        sub.confirmed,
        sub.unsubscribed,
        [
            Membership(
                m.list_slug, m.status, m.format, m.profile, store.chosen_sections(m.sections)
            )
            for m in rows
        ],
        None
        if sup is None
        else {"reason": sup.reason, "origin": sup.origin, "since": sup.created.isoformat()},
        address_of(conn, sub.id),
        sub.timezone,
    )


def add(
    app: App,
    address: str,
    *,
    list_slug: str,
    name: str,
    fmt: str | None,
    profile: str | None,
    pending: bool,
    resubscribe: bool,
    now: datetime,
    timezone: str | None = None,
) -> str:
    """Staff put one person on a list. Returns what happened, in words. ``timezone``
    (blank: leave theirs as it is; new: the organisation's) is checked and kept."""
    from digest.lifecycle.welcome import prepare_welcomes

    settings, engine = app.settings, app.engine
    listed = settings.list_named(list_slug)
    prepare_welcomes(app, [list_slug])  # so they are welcomed, not taken for an old member
    fmt = fmt or ("print" if listed.kind == "print" else "html")
    if fmt not in FORMATS:
        raise AudienceError(f"--format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if profile is not None and profile not in {p.name for p in settings.print.profiles}:
        raise AudienceError(f"--profile {profile!r} is not in [[print.profiles]]")
    email, key = _key(address)
    zone = subscriber_timezone(timezone)
    status = store.PENDING if pending else store.ACTIVE
    with engine.begin() as conn:
        store.sync_lists(conn, settings.lists)
        sub = store.find_subscriber(conn, key)
        _check_not_gone(conn, key, sub, resubscribe, marks_of(app, conn))
        if sub is None:
            store.add_subscribers(
                conn,
                [
                    {
                        "email": email,
                        "email_key": key,
                        "name": " ".join(name.split()),
                        "status": status,
                        "source": "staff",
                        "created": now,
                        "confirmed": now if status == store.ACTIVE else None,
                        "timezone": zone,
                    }
                ],
            )
            sub = store.find_subscriber(conn, key)
            assert sub is not None
        elif resubscribe or (sub.status == store.PENDING and not pending):
            store.update_subscriber(
                conn,
                sub.id,
                status=status,
                unsubscribed=None,
                confirmed=now if status == store.ACTIVE else sub.confirmed,
            )
        elif zone is not None and zone != sub.timezone:
            store.update_subscriber(conn, sub.id, timezone=zone)
        return _join(conn, sub, list_slug, status, fmt, profile, now, resubscribe=resubscribe)


def _check_not_gone(
    conn: Connection, key: str, sub: Any, resubscribe: bool, marks: store.Marks
) -> None:
    sup = store.suppression_of(conn, key, marks)
    gone = sup is not None or (sub is not None and sub.status in store.GONE)
    if gone and not resubscribe:
        why = sup.reason if sup is not None else sub.status
        raise AudienceError(
            f"this address is suppressed ({why}): they should subscribe again themselves; "
            "pass --resubscribe only if they asked you to in writing"
        )
    if gone:
        store.lift_suppression(conn, key, marks)


def _join(
    conn: Connection,
    sub: Any,
    list_slug: str,
    status: str,
    fmt: str,
    profile: str | None,
    now: datetime,
    *,
    resubscribe: bool,
) -> str:
    member = store.list_memberships(conn, list_slug, [sub.id]).get(sub.id)
    if member is not None and member.status == store.UNSUBSCRIBED and not resubscribe:
        raise AudienceError(
            f"{sub.email} unsubscribed from {list_slug}: they should subscribe again "
            "themselves; pass --resubscribe only if they asked you to in writing"
        )
    if member is None:
        store.add_membership(
            conn, sub.id, list_slug, status=status, fmt=fmt, profile=profile, now=now
        )
        return f"added {sub.email} to {list_slug} ({status}, {fmt})"
    store.update_membership(
        conn,
        sub.id,
        list_slug,
        status=status,
        format=fmt,
        profile=profile or member.profile,
        changed=now,
    )
    return f"updated {sub.email} on {list_slug} ({status}, {fmt})"


def remove(
    app: App,
    address: str,
    *,
    list_slug: str | None,
    now: datetime,
    origin: str = "digest subscribers remove",
) -> str:
    """Take someone off one list, or off everything (then suppressed, reason staff)."""
    settings, engine = app.settings, app.engine
    if list_slug is not None:
        settings.list_named(list_slug)
    with engine.begin() as conn:
        sub = _require(conn, address)
        if list_slug is not None:
            if not store.update_membership(
                conn, sub.id, list_slug, status=store.UNSUBSCRIBED, changed=now
            ):
                raise AudienceError(f"{sub.email} is not on {list_slug}")
            return f"removed {sub.email} from {list_slug}"
        leave_everything(conn, sub, reason="staff", origin=origin, now=now)
        return f"removed {sub.email} from every list; the address is suppressed (staff)"


def leave_everything(
    conn: Connection, sub: Any, *, reason: str, origin: str, now: datetime
) -> None:
    """Every membership unsubscribed, the subscriber unsubscribed and suppressed."""
    for member in store.memberships_of(conn, sub.id):
        if member.status != store.UNSUBSCRIBED:
            store.update_membership(
                conn, sub.id, member.list_slug, status=store.UNSUBSCRIBED, changed=now
            )
    if sub.status not in store.GONE:
        store.update_subscriber(conn, sub.id, status=store.UNSUBSCRIBED, unsubscribed=now)
    store.suppress(conn, sub.email, sub.email_key, reason=reason, origin=origin, now=now)


def list_summary(app: App) -> list[tuple[str, str, str, dict[str, int]]]:
    """(slug, kind, name, counts per state) for every configured list."""
    settings, engine = app.settings, app.engine
    with engine.begin() as conn:
        store.sync_lists(conn, settings.lists)
        counts = store.list_counts(conn)
    return [(x.slug, x.kind, x.name, counts.get(x.slug, {})) for x in settings.lists]


@dataclass(frozen=True, slots=True)
class Changes:
    """What staff set on one person's page: their name, format, print profile and sections
    (on every list they are on, as the preferences page does), and the lists they should be
    on. ``sections``: the ones ticked; None when the page did not show them."""

    name: str
    fmt: str | None
    profile: str | None
    lists: frozenset[str]
    sections: frozenset[str] | None = None


def edit(app: App, subscriber_id: int, changes: Changes, *, now: datetime) -> list[str]:
    """Change one person as staff; what changed, in words. Joining a list someone left, or
    anything for an address that left every list, is refused: that is a resubscription,
    with its reason."""
    settings = app.settings
    for slug in changes.lists:
        settings.list_named(slug)
    _check_format(settings, changes.fmt, changes.profile)
    with app.engine.begin() as conn:
        store.sync_lists(conn, settings.lists)
        sub = store.subscriber_by_id(conn, subscriber_id)
        if sub is None:
            raise AudienceError("no such subscriber: they may have been removed")
        said = []
        name = " ".join(changes.name.split())[:200]
        if name != sub.name:
            store.update_subscriber(conn, sub.id, name=name)
            said.append("name")
        said += _set_lists(conn, sub, changes, now)
        said += _set_format(conn, sub, changes, now)
        if changes.sections is not None:
            chosen = sections_ticked(settings, changes.sections)
            if store.set_sections(conn, sub.id, chosen, now=now):
                said.append("sections")
    return said


def sections_ticked(settings: Any, ticked: frozenset[str] | list[str]) -> list[str] | None:
    """The sections to store for those ticked on a form, in the edition's order: None when
    every configured one is, so a section added later reaches them too. Refused when none
    is: a digest of nothing is not a choice."""
    configured = settings.edition.sections
    chosen = [key for key in configured if key in ticked]
    if not chosen:
        raise AudienceError("pick at least one section (the editor's note always comes)")
    return None if len(chosen) == len(configured) else chosen


def _check_format(settings: Any, fmt: str | None, profile: str | None) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise AudienceError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if profile is not None and profile not in {p.name for p in settings.print.profiles}:
        raise AudienceError(f"print profile {profile!r} is not in [[print.profiles]]")


def _set_lists(conn: Connection, sub: Any, changes: Changes, now: datetime) -> list[str]:
    members = {m.list_slug: m for m in store.memberships_of(conn, sub.id)}
    said = []
    for slug, member in members.items():
        if member.status != store.UNSUBSCRIBED and slug not in changes.lists:
            store.update_membership(conn, sub.id, slug, status=store.UNSUBSCRIBED, changed=now)
            said.append(f"left {slug}")
    for slug in sorted(changes.lists):
        had = members.get(slug)
        if had is not None and had.status != store.UNSUBSCRIBED:
            continue
        if had is not None or sub.status in store.GONE:
            raise AudienceError(
                f"{sub.email} left {'every list' if had is None else slug}: put them back "
                "with Resubscribe, and the reason, only if they asked in writing"
            )
        store.add_membership(
            conn,
            sub.id,
            slug,
            status=store.ACTIVE,
            fmt=changes.fmt or "html",
            profile=changes.profile,
            now=now,
        )
        said.append(f"joined {slug}")
    return said


def _set_format(conn: Connection, sub: Any, changes: Changes, now: datetime) -> list[str]:
    wanted = {"format": changes.fmt, "profile": changes.profile}
    updates = {k: v for k, v in wanted.items() if v is not None}
    said: set[str] = set()
    for member in store.memberships_of(conn, sub.id):
        differ = {k: v for k, v in updates.items() if getattr(member, k) != v}
        if differ and member.status != store.UNSUBSCRIBED:
            store.update_membership(conn, sub.id, member.list_slug, changed=now, **differ)
            said.update(differ)
    return sorted(said)
