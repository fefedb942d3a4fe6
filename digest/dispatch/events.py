"""SendGrid's event webhook: verify, then parse, then act (the web app's endpoint calls these).

Events become one small enum (an unknown type is kept as ``unknown`` with its raw
payload), are stored once per ``sg_event_id`` and mapped back to edition and batch
through ``custom_args``. Bounces (type bounce), spam reports, unsubscribes and group
unsubscribes suppress the address at once; blocked, deferred and dropped are counted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from email_validator import EmailNotValidError
from sqlalchemy.engine import Connection, Engine, Row

from digest.audience.addresses import email_key
from digest.store import audience, delivery

MAX_AGE = timedelta(minutes=10)


class EventKind(StrEnum):
    PROCESSED = "processed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    DROPPED = "dropped"
    BOUNCE = "bounce"
    BLOCKED = "blocked"
    OPEN = "open"
    CLICK = "click"
    SPAMREPORT = "spamreport"
    UNSUBSCRIBE = "unsubscribe"
    GROUP_UNSUBSCRIBE = "group_unsubscribe"
    GROUP_RESUBSCRIBE = "group_resubscribe"
    UNKNOWN = "unknown"


SUPPRESSING = {
    EventKind.BOUNCE: "bounce",
    EventKind.SPAMREPORT: "spam report",
    EventKind.UNSUBSCRIBE: "unsubscribed",
    EventKind.GROUP_UNSUBSCRIBE: "unsubscribed",
}


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    kind: EventKind
    email: str
    edition: str | None
    batch: str | None
    at: datetime
    sg_event_id: str
    raw: dict[str, Any]


class BadWebhookKey(ValueError):
    """SENDGRID_WEBHOOK_PUBLIC_KEY is not what SendGrid gives; the message says how."""


def load_webhook_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's event webhook key: base64 of a DER elliptic-curve public key."""
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
    except (ValueError, binascii.Error) as exc:
        raise BadWebhookKey("is not a base64 DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BadWebhookKey("is not an ECDSA key, as SendGrid's are")
    return key


def verify_signature(
    public_key_b64: str, payload: bytes, signature_b64: str, timestamp: str, *, now: datetime
) -> bool:
    """True when SendGrid signed ``timestamp + payload`` (the raw bytes) and it is recent."""
    try:
        key = load_webhook_key(public_key_b64)
        signature = base64.b64decode(signature_b64, validate=True)
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, binascii.Error, OverflowError, OSError):
        return False
    if abs(now - sent) > MAX_AGE:
        return False
    try:
        key.verify(signature, timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def parse_events(payload: bytes) -> list[DeliveryEvent]:
    """The events of a verified body (ValueError when it is not SendGrid's JSON list, or
    when any event's time is not a time: then none of them is stored)."""
    try:
        data = json.loads(payload)
    except RecursionError:
        raise ValueError("the event webhook body is nested too deeply") from None
    if not isinstance(data, list):
        raise ValueError("the event webhook body is not a JSON list")
    events = []
    for raw in data:
        if not isinstance(raw, dict) or not raw.get("sg_event_id"):
            continue
        kind = _kind(raw)
        when = _when(raw.get("timestamp"))
        events.append(
            DeliveryEvent(
                kind,
                str(raw.get("email", "")),
                _text(raw.get("digest_edition")),
                _text(raw.get("digest_batch")),
                when,
                str(raw["sg_event_id"]),
                raw,
            )
        )
    return events


def _when(stamp: Any) -> datetime:
    try:
        if isinstance(stamp, bool) or not isinstance(stamp, int | float | str | None):
            raise TypeError
        return datetime.fromtimestamp(int(stamp or 0), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValueError(f"an event's timestamp {str(stamp)[:40]!r} is not a time") from None


def _kind(raw: dict[str, Any]) -> EventKind:
    try:
        kind = EventKind(str(raw.get("event", "")))
    except ValueError:
        return EventKind.UNKNOWN
    if kind == EventKind.BOUNCE and raw.get("type") == "blocked":
        return EventKind.BLOCKED
    return kind


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:40]


def record_events(engine: Engine, events: list[DeliveryEvent], *, now: datetime) -> Counter[str]:
    """Store each new event once; suppress where the event says so. Counts by outcome."""
    counts: Counter[str] = Counter()
    with engine.begin() as conn:
        ids = [e.sg_event_id for e in events]
        seen = delivery.seen_event_ids(conn, ids)
        for event in events:
            if event.sg_event_id in seen:
                counts["repeated"] += 1
                continue
            seen.add(event.sg_event_id)
            delivery.add_event(conn, _row(event, now))
            counts[event.kind.value] += 1
            reason = SUPPRESSING.get(event.kind)
            if reason is not None:
                counts["suppressed"] += _suppress(conn, event, reason, now)
    return counts


def _row(event: DeliveryEvent, received: datetime) -> dict[str, Any]:
    """The event as stored, its raw payload kept whole."""
    return {
        "sg_event_id": event.sg_event_id,
        "kind": event.kind.value,
        "email": event.email[:320],
        "edition_id": event.edition,
        "batch": event.batch,
        "at": event.at,
        "received": received,
        "raw": json.dumps(event.raw),
    }


def _suppress(conn: Any, event: DeliveryEvent, reason: str, now: datetime) -> int:
    try:
        given, key = email_key(event.email)
    except EmailNotValidError:
        return 0
    return int(
        audience.suppress(
            conn, given, key, reason=reason, origin=f"sendgrid {event.kind.value}", now=now
        )
    )


def events_of(conn: Connection, email: str, *, limit: int = 100) -> list[Row[Any]]:
    """What SendGrid told us about one address, newest first."""
    return delivery.events_for_address(conn, email, limit)
