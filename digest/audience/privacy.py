"""The right to be forgotten, and a copy of one's data (issue 17).

``forget`` erases a person from every table that holds their address or name: their
subscriber row (kept blank, status ``forgotten``, only while the send ledger points at it),
memberships, mailing address and sign-up requests; the address and name on their ledger
rows (the rows stay: counts and exactly-once need them); the address in delivery events
(kind, edition and time stay for the edition's numbers) and in staff audit lines. Only a
keyed mark of the address stays, in the suppressions (``Keyring.forgotten``): no import
brings them back, and a sign-up confirmed by them is the only way back.

``export_person`` is everything stored about one person, as plain JSON-ready data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from email_validator import EmailNotValidError
from sqlalchemy.engine import Connection, Engine

from digest.audience.addresses import email_key
from digest.audience.forgotten import marks_of
from digest.audience.tokens import Keyring
from digest.errors import AudienceError
from digest.staff import audit
from digest.store import audience as store
from digest.store import editions, ledger
from digest.store.mailing import address_of
from digest.store.tables import (
    audit_log,
    batches,
    delivery_events,
    edition_events,
    mailing_addresses,
    memberships,
    send_recipients,
    signup_requests,
    subscribers,
    suppressions,
)

if TYPE_CHECKING:
    from digest.context import App

ERASED = "(forgotten)"  # what stands where their address or name was in free text
FORGOTTEN_ORIGIN = "asked to be forgotten"
# Free text that may quote an address (an error SendGrid sent back, a note, an audit line).
FREE_TEXT = ((audit_log, "detail"), (batches, "reason"), (edition_events, "note"))


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What ``forget`` did: which subscriber (None when only events or suppressions held
    the address), the mark left instead of the address, and the ledger rows kept blank."""

    subscriber_id: int | None
    mark: str
    sends_kept: int

    def said(self) -> str:
        who = f"subscriber #{self.subscriber_id}" if self.subscriber_id else "the address"
        return (
            f"forgotten: {who}; {self.sends_kept} send(s) kept in the ledger without the "
            "address; they can come back only by signing up again on the website"
        )


def _key(address: str) -> tuple[str, str]:
    try:
        return email_key(address)
    except EmailNotValidError as exc:
        raise AudienceError(f"{address!r} is not an email address: {exc}") from None


def _unknown(address: str) -> AudienceError:
    return AudienceError(f"nothing is stored about {address!r}: check the spelling")


def forget(engine: Engine, keys: Keyring, address: str, *, who: str, now: datetime) -> Forgotten:
    """Erase one person (see the module docstring), in one transaction, audited by the
    mark and subscriber id alone."""
    _, key = _key(address)
    mark = keys.forgotten(key)[0]
    with engine.begin() as conn:
        # A plan running would write them into the ledger after this erased it: wait for it.
        editions.hold_all(conn)
        sub = store.find_subscriber(conn, key)
        events = _events_naming(conn, key)
        if sub is None and not events and not _suppressed_as(conn, key):
            raise _unknown(address)
        clear = [key] + ([sub.email, sub.name] if sub is not None else [])
        kept = _erase_subscriber(conn, sub, now) if sub is not None else 0
        conn.execute(
            sa.update(delivery_events)
            .where(delivery_events.c.sg_event_id.in_(events))
            .values(email="", raw="{}")
        )
        _erase_free_text(conn, key, clear, mark)
        conn.execute(
            sa.delete(suppressions).where(
                sa.or_(suppressions.c.email_key == key, sa.func.lower(suppressions.c.email) == key)
            )
        )
        store.suppress(conn, "", mark, reason=store.FORGOTTEN, origin=FORGOTTEN_ORIGIN, now=now)
        sid = sub.id if sub is not None else None
        audit.record(
            conn,
            who=who,
            action="subscriber forgotten",
            target=mark,
            detail=f"subscriber #{sid}; {kept} send(s) kept without the address",
            now=now,
        )
    return Forgotten(sid, mark, kept)


def _erase_subscriber(conn: Connection, sub: Any, now: datetime) -> int:
    """Their rows gone; the subscriber row too, or kept blank while the ledger needs it.
    How many ledger rows were kept."""
    for table in (memberships, mailing_addresses, signup_requests):
        conn.execute(sa.delete(table).where(table.c.subscriber_id == sub.id))
    unsent = sa.select(batches.c.id).where(batches.c.state == "pending")
    conn.execute(  # not sent yet: they are no longer among its recipients
        sa.delete(send_recipients).where(
            send_recipients.c.subscriber_id == sub.id, send_recipients.c.batch_id.in_(unsent)
        )
    )
    kept = conn.execute(
        sa.update(send_recipients)
        .where(send_recipients.c.subscriber_id == sub.id)
        .values(email="", name="")
    ).rowcount
    if kept:
        store.update_subscriber(
            conn,
            sub.id,
            email="",
            email_key=f"#{sub.id}",  # never an address's key: those all hold an @
            name="",
            status=store.FORGOTTEN,
            source="",
            confirmed=None,
            unsubscribed=now,
            timezone=None,
        )
    else:
        conn.execute(sa.delete(subscribers).where(subscribers.c.id == sub.id))
    return int(kept)


def _events_naming(conn: Connection, key: str) -> list[str]:
    query = sa.select(delivery_events.c.sg_event_id).where(
        sa.or_(
            sa.func.lower(delivery_events.c.email) == key,
            sa.func.lower(delivery_events.c.raw).contains(key, autoescape=True),
        )
    )
    return list(conn.execute(query).scalars())


def _suppressed_as(conn: Connection, key: str) -> bool:
    query = sa.select(suppressions.c.email_key).where(
        sa.or_(suppressions.c.email_key == key, sa.func.lower(suppressions.c.email) == key)
    )
    return conn.execute(query).first() is not None


def _erase_free_text(conn: Connection, key: str, clear: list[str], mark: str) -> None:
    """Audit lines about them point at the mark; their address and name leave free text."""
    conn.execute(
        sa.update(audit_log).where(sa.func.lower(audit_log.c.target) == key).values(target=mark)
    )
    words = [w for w in dict.fromkeys(clear) if w.strip()]
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(w)}(?!\w)" for w in words), re.I)
    for table, name in FREE_TEXT:
        column = table.c[name]
        near = [sa.func.lower(column).contains(w.casefold(), autoescape=True) for w in words]
        pk = next(iter(table.primary_key.columns))
        for ident, text in conn.execute(sa.select(pk, column).where(sa.or_(*near))).all():
            if text is not None and pattern.search(text):
                conn.execute(
                    sa.update(table).where(pk == ident).values({name: pattern.sub(ERASED, text)})
                )


def export_person(
    engine: Engine, address: str, marks: store.Marks = store.no_marks
) -> dict[str, Any]:
    """Everything stored about the person with this address (``marks``: to include the
    mark left if they were forgotten before and signed up again)."""
    given, key = _key(address)
    with engine.connect() as conn:
        sub = store.find_subscriber(conn, key)
        found = _export(conn, sub, given if sub is None else sub.email, key, marks)
    if sub is None and not (found["delivery_events"] or found["suppressions"]):
        raise _unknown(address)
    return found


def person_json(app: App, address: str) -> str:
    """``export_person`` as JSON text (with their forgotten mark, where the key is set)."""
    with app.engine.connect() as conn:
        marks = marks_of(app, conn)
    return json.dumps(export_person(app.engine, address, marks), ensure_ascii=False, indent=2)


def export_subscriber(
    engine: Engine, subscriber_id: int, marks: store.Marks = store.no_marks
) -> dict[str, Any] | None:
    """``export_person`` for one subscriber row (a signed link's, the console's)."""
    with engine.connect() as conn:
        sub = store.subscriber_by_id(conn, subscriber_id)
        if sub is None or sub.status == store.FORGOTTEN:
            return None
        return _export(conn, sub, sub.email, sub.email_key, marks)


def _export(conn: Connection, sub: Any, email: str, key: str, marks: store.Marks) -> dict[str, Any]:
    sid = sub.id if sub is not None else None
    postal = address_of(conn, sid) if sid is not None else None
    return {
        "email": email,
        "subscriber": _subscriber(sub),
        "memberships": [_membership(m) for m in store.memberships_of(conn, sid)]
        if sid is not None
        else [],
        "mailing_address": postal.values() if postal is not None else None,
        "signup_requests": _requests(conn, sid),
        "sends": [
            {
                "edition": s.edition_id,
                "list": s.list_slug,
                "format": s.format,
                "batch_state": s.state,
                "accepted_at": _when(s.accepted_at),
            }
            for s in (ledger.sends_to(conn, sid) if sid is not None else [])
        ],
        "delivery_events": _events(conn, key),
        "suppressions": _suppressions(conn, key, marks),
        "audit": _audit_lines(conn, key, marks),
    }


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _plain(row: Any, *leave_out: str) -> dict[str, Any]:
    values = {k: v for k, v in row._mapping.items() if k not in leave_out}
    return {k: _when(v) if isinstance(v, datetime) else v for k, v in values.items()}


def _membership(row: Any) -> dict[str, Any]:
    """A membership, its chosen sections as a list (null: every section)."""
    values = _plain(row, "subscriber_id")
    chosen = store.chosen_sections(row.sections)
    values["sections"] = list(chosen) if chosen is not None else None
    return values


def _subscriber(sub: Any) -> dict[str, Any] | None:
    return None if sub is None else _plain(sub, "email_key")


def _requests(conn: Connection, sid: int | None) -> list[dict[str, Any]]:
    if sid is None:
        return []
    query = (
        sa.select(
            signup_requests.c.id,
            signup_requests.c.lists,
            signup_requests.c.format,
            signup_requests.c.profile,
            signup_requests.c.created,
            signup_requests.c.sent,
            signup_requests.c.confirmed,
        )
        .where(signup_requests.c.subscriber_id == sid)
        .order_by(signup_requests.c.id)
    )
    return [_plain(r) | {"lists": r.lists.split()} for r in conn.execute(query)]


def _events(conn: Connection, key: str) -> list[dict[str, Any]]:
    query = (
        sa.select(delivery_events)
        .where(sa.func.lower(delivery_events.c.email) == key)
        .order_by(delivery_events.c.at)
    )
    found = []
    for row in conn.execute(query):
        try:
            raw = json.loads(row.raw)
        except ValueError:
            raw = row.raw
        found.append(_plain(row, "sg_event_id", "received", "raw") | {"raw": raw})
    return found


def _suppressions(conn: Connection, key: str, marks: store.Marks) -> list[dict[str, Any]]:
    query = sa.select(suppressions).where(
        sa.or_(
            suppressions.c.email_key == key,
            sa.func.lower(suppressions.c.email) == key,
            suppressions.c.email_key.in_(list(marks(key))),
        )
    )
    return [_plain(r, "email_key", "email") for r in conn.execute(query)]


def _audit_lines(conn: Connection, key: str, marks: store.Marks) -> list[dict[str, Any]]:
    query = (
        sa.select(audit_log.c.at, audit_log.c.who, audit_log.c.action, audit_log.c.detail)
        .where(
            sa.or_(
                sa.func.lower(audit_log.c.target) == key,
                audit_log.c.target.in_(list(marks(key))),
                sa.func.lower(audit_log.c.detail).contains(key, autoescape=True),
            )
        )
        .order_by(audit_log.c.id)
    )
    return [_plain(r) for r in conn.execute(query)]
