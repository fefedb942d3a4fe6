"""A batch's SendGrid request built from the ledger's rows is the request one addressee
at a time made: the same links, the same bytes (issue 18 builds it without an object a
recipient)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.audience.tokens import Keyring
from digest.dispatch.batch import Addressee, LedgerPeople, OutgoingBatch
from digest.dispatch.personal import LinkMaker, PersonalLinks
from digest.dispatch.sendgrid import build_payload, encode_payload
from digest.models import Recipient, RenderedEmail
from digest.render import NAME, PREFERENCES, UNSUBSCRIBE
from tests.golden_edition import golden_settings

KEYS = Keyring(b"a-test-signing-key-0123456789", (b"an-older-key-0123456789",))
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ROWS = [
    (1, "ana@example.org", "Ana Lima", "weekly"),
    (7, "bo@example.org", "", "weekly"),  # no name: no "name" in "to"
    (42, "jose@example.org", "José O'Brien <&>", "weekly"),
    (1234567, "zoe@example.org", 'Zoë "Z" Müller', "events-and-more"),
    (99, "cy@example.org", "Cy", "a"),  # a slug of one character
]


def _one_by_one(
    maker: LinkMaker, rows: list[tuple[int, str, str, str]], format_: str = "html"
) -> list[Addressee]:
    """Addressees as run.py made them before: two tokens from make_at, the URLs, the header."""
    people = []
    for sid, email, name, slug in rows:
        unsub = KEYS.make_at("unsubscribe", sid, slug, maker.issued)
        prefs = KEYS.make_at("preferences", sid, slug, maker.issued)
        url = maker.urls.unsubscribe(unsub)
        header = f"<{url}>, <mailto:{maker.mailbox}?subject=unsubscribe%20{unsub}>"
        links = PersonalLinks(url, maker.urls.preferences(prefs), header)
        people.append(Addressee(Recipient(sid, email, name, format_, (slug,)), slug, links))
    return people


@pytest.mark.parametrize("deliver_at", [None, datetime(2026, 11, 27, 7, 0, tzinfo=UTC)])
@pytest.mark.parametrize("with_name", [False, True])
def test_the_request_from_rows_is_byte_for_byte_the_one_made_one_addressee_at_a_time(
    deliver_at: datetime | None, with_name: bool
) -> None:
    settings = golden_settings()
    maker = LinkMaker.at(settings, KEYS, NOW)
    greeting = f"Hello {NAME}, " if with_name else ""
    email = RenderedEmail(
        f"{greeting}this week", f"<p>{greeting}{UNSUBSCRIBE} {PREFERENCES}</p>", UNSUBSCRIBE
    )

    def request(people: object) -> bytes:
        batch = OutgoingBatch("2026-W48", 3, "html", email, people, (), deliver_at, "sched")  # type: ignore[arg-type]
        return encode_payload(build_payload(settings, batch))

    fast = request(LedgerPeople(ROWS, LinkMaker.at(settings, KEYS, NOW), "html"))
    assert fast == request(_one_by_one(maker, ROWS))
    assert b"Jos\xc3\xa9 OBrien " in fast if with_name else b'"-name-"' not in fast


def test_ledger_people_are_addressees_for_whoever_asks() -> None:
    """The outbox walks a batch's addressees: each the recipient, list and links as before."""
    settings = golden_settings()
    maker = LinkMaker.at(settings, KEYS, NOW)
    people = LedgerPeople(ROWS, LinkMaker.at(settings, KEYS, NOW), "html")
    assert len(people) == len(ROWS)
    assert list(people) == _one_by_one(maker, ROWS)
    assert people[2] == _one_by_one(maker, ROWS[2:3])[0]
    assert people[1:3] == _one_by_one(maker, ROWS[1:3])
    # A batch's recipients have its variant's format (a print batch's chose print).
    assert list(LedgerPeople(ROWS, maker, "print")) == _one_by_one(maker, ROWS, "print")


def test_a_pair_of_tokens_is_two_tokens_made_one_at_a_time() -> None:
    for purposes in (("unsubscribe", "preferences"), ("confirm", "unsubscribe")):
        for slug in ("weekly", "a", "ab", "events-and-more"):
            for issued in (0, 17, int(NOW.timestamp())):
                pair = KEYS.pair_at(*purposes, slug, issued)
                for sid in (1, 12, 123, 4567, 10**7 + 3):
                    one, two = pair(sid)
                    assert one == KEYS.make_at(purposes[0], sid, slug, issued)
                    assert two == KEYS.make_at(purposes[1], sid, slug, issued)
                    claims = KEYS.check(one, purposes[0], now=datetime.fromtimestamp(issued, UTC))
                    assert claims is not None and claims.subscriber_id == sid


def test_a_pair_for_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown token purpose"):
        KEYS.pair_at("unsubscribe", "everything", "weekly", 0)
