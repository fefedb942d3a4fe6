"""SendGrid's event webhook: only signed, recent bodies count; each event once; the right
events suppress the address."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.dispatch.events import EventKind, parse_events, record_events, verify_signature
from digest.store.tables import delivery_events, suppressions


@pytest.fixture
def vector(corpus: Path) -> dict:
    return json.loads((corpus / "sendgrid" / "event_webhook_signature_vector.json").read_text())


def _at(vector: dict) -> datetime:
    return datetime.fromtimestamp(
        int(vector["header_X-Twilio-Email-Event-Webhook-Timestamp"]), UTC
    ) + timedelta(seconds=30)


def test_the_signed_vector_verifies_and_every_tampering_fails(vector: dict) -> None:
    key = vector["public_key_b64_der_spki"]
    body = vector["raw_body"].encode()
    signature = vector["header_X-Twilio-Email-Event-Webhook-Signature"]
    stamp = vector["header_X-Twilio-Email-Event-Webhook-Timestamp"]
    now = _at(vector)
    assert verify_signature(key, body, signature, stamp, now=now)
    other_key = vector["negative_cases"][2]["change"].split(" ")[-1]
    other_signature = vector["negative_cases"][3]["change"].split(" ")[-1]
    assert not verify_signature(key, body.rstrip(b"\r\n"), signature, stamp, now=now)
    assert not verify_signature(key, body, signature, str(int(stamp) + 1), now=now)
    assert not verify_signature(other_key, body, signature, stamp, now=now)
    assert not verify_signature(key, body, other_signature, stamp, now=now)
    assert not verify_signature(key, body, "not base64!", stamp, now=now)
    assert not verify_signature(key, body, signature, "soon", now=now)


def test_a_stale_timestamp_is_refused(vector: dict) -> None:
    later = _at(vector) + timedelta(minutes=11)
    assert not verify_signature(
        vector["public_key_b64_der_spki"],
        vector["raw_body"].encode(),
        vector["header_X-Twilio-Email-Event-Webhook-Signature"],
        vector["header_X-Twilio-Email-Event-Webhook-Timestamp"],
        now=later,
    )


def _body(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()


def _event(n: int, kind: str, email: str, **extra: object) -> dict:
    return {
        "sg_event_id": f"ev{n}",
        "event": kind,
        "email": email,
        "timestamp": 1795694400,
        "digest_edition": "2026-W48",
        "digest_batch": "3",
        **extra,
    }


def test_events_are_stored_once_mapped_back_and_suppress_when_they_should(make_project) -> None:
    project = make_project()
    engine = project.engine()
    now = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    body = _body(
        _event(1, "bounce", "Gone@Example.org", type="bounce"),
        _event(2, "bounce", "blocked@example.org", type="blocked"),
        _event(3, "spamreport", "angry@example.org"),
        _event(4, "group_unsubscribe", "left@example.org", asm_group_id=1),
        _event(5, "deferred", "slow@example.org"),
        _event(6, "delivered", "fine@example.org"),
        _event(7, "teleported", "odd@example.org"),
    )
    events = parse_events(body)
    assert [e.kind for e in events][-1] == EventKind.UNKNOWN
    assert {(e.edition, e.batch) for e in events} == {("2026-W48", "3")}
    counts = record_events(engine, events, now=now)
    assert counts["suppressed"] == 3 and counts["blocked"] == 1 and counts["deferred"] == 1
    again = record_events(engine, parse_events(body), now=now)
    assert again["repeated"] == 7 and again["suppressed"] == 0
    with engine.connect() as conn:
        suppressed = dict(
            conn.execute(sa.select(suppressions.c.email_key, suppressions.c.reason)).all()
        )
        stored = conn.execute(
            sa.select(delivery_events.c.kind, delivery_events.c.raw).where(
                delivery_events.c.sg_event_id == "ev7"
            )
        ).one()
    assert suppressed == {
        "gone@example.org": "bounce",
        "angry@example.org": "spam report",
        "left@example.org": "unsubscribed",
    }
    assert stored.kind == "unknown" and json.loads(stored.raw)["event"] == "teleported"


@pytest.mark.parametrize("body", [b"not json", b'{"event": "bounce"}'])
def test_a_body_that_is_not_an_event_list_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_events(body)
