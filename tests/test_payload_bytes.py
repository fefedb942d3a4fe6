"""The SendGrid request of a ledger batch is the very bytes the builder before it made
(rows to links to personalizations in three loops, names cleaned by str.translate), for
every kind of variant, with and without names, in any script."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import digest.dispatch.sendgrid as sendgrid
from digest.audience.tokens import Keyring
from digest.dispatch.batch import Addressee, LedgerPeople, OutgoingBatch
from digest.dispatch.personal import LinkMaker
from digest.dispatch.variants import format_of
from digest.models import Attachment, Recipient, RenderedEmail
from digest.render import NAME, PREFERENCES, UNSUBSCRIBE
from tests.golden_edition import golden_settings

KEYS = Keyring(b"a-payload-signing-key-0123456789")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ROWS = [
    (3, "ana@example.org", "Ana Lima", "weekly"),
    (8, "bo@example.org", "", "weekly"),  # no name
    (12, "jose@example.org", 'José O\'Brien <&> "J"', "weekly"),
    (77, "zoe@example.org", "Zoë Müller-Łukasiewicz", "events-and-more"),
    (4567, "mei@example.org", "王美 (Mei) — 😀", "a"),
    (10**7 + 1, "rtl@example.org", "نور \t tab", "weekly"),
]
VARIANTS = ["html", "text", "print:inside", "html~events", "print:inside~events+news"]
_OLD_UNSAFE = str.maketrans("", "", "<>&\"'")


def _old_from_rows(
    people: LedgerPeople, uses_name: bool, send_at: int | None
) -> list[dict[str, Any]]:
    """sendgrid._from_rows as it was at commit 563377b, word for word but for the rows'
    shape (their format column is not read since)."""
    out: list[dict[str, Any]] = []
    append = out.append
    for (_, email, name, _), (unsubscribe, preferences, header) in zip(
        people.rows, people.links(), strict=True
    ):
        substitutions = {UNSUBSCRIBE: unsubscribe, PREFERENCES: preferences}
        if uses_name:
            substitutions[NAME] = name.translate(_OLD_UNSAFE)
        one: dict[str, Any] = {
            "to": [{"email": email, "name": name} if name else {"email": email}],
            "substitutions": substitutions,
            "headers": {"List-Unsubscribe": header, "List-Unsubscribe-Post": sendgrid.ONE_CLICK},
        }
        if send_at is not None:
            one["send_at"] = send_at
        append(one)
    return out


def _request(variant: str, people: Any, with_name: bool, deliver_at: datetime | None) -> bytes:
    greeting = f"Hello {NAME}, " if with_name else ""
    email = RenderedEmail(
        f"{greeting}this week", f"<p>{greeting}{UNSUBSCRIBE} {PREFERENCES}</p>", UNSUBSCRIBE
    )
    files = (Attachment("inside.pdf", "application/pdf", b"%PDF-1.7 \x00\xff"),)
    attachments = files if variant.startswith("print") else ()
    batch = OutgoingBatch(
        "2026-W48",
        5,
        variant,
        email,
        people,
        attachments,
        deliver_at,
        "sched" if deliver_at else None,
    )
    return sendgrid.encode_payload(sendgrid.build_payload(golden_settings(), batch))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("with_name", [False, True])
@pytest.mark.parametrize("deliver_at", [None, datetime(2026, 11, 27, 7, 0, tzinfo=UTC)])
def test_a_batchs_request_is_the_bytes_the_old_builder_made(
    monkeypatch: pytest.MonkeyPatch, variant: str, with_name: bool, deliver_at: datetime | None
) -> None:
    maker = LinkMaker.at(golden_settings(), KEYS, NOW)
    new = _request(variant, LedgerPeople(ROWS, maker, format_of(variant)), with_name, deliver_at)
    # One addressee at a time (the outbox's objects, the path other callers take).
    addressees = [
        Addressee(
            Recipient(sid, email, name, format_of(variant), (slug,)), slug, maker.links(sid, slug)
        )
        for sid, email, name, slug in ROWS
    ]
    assert _request(variant, addressees, with_name, deliver_at) == new
    monkeypatch.setattr(sendgrid, "_from_rows", _old_from_rows)
    assert (
        _request(variant, LedgerPeople(ROWS, maker, format_of(variant)), with_name, deliver_at)
        == new
    )
    # What a reader would see: the name cleaned, in its own script, and the links signed.
    if with_name:
        assert '"-name-":"José OBrien  J"'.encode() in new
        assert "王美 (Mei) — 😀".encode() in new
    else:
        assert b'"-name-"' not in new
    assert new.count(b"List-Unsubscribe=One-Click") == len(ROWS)
    token = KEYS.make_at("unsubscribe", 77, "events-and-more", maker.issued)
    assert token.encode() in new
