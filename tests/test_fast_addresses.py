"""The fast address path agrees with email-validator on every address it takes, and hands
it everything else: the same keys, the same normalised forms, the same refusals."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from digest.audience.addresses import email_key, plain_normalized


def reference(address: str) -> tuple[str, str] | str:
    """email_key as it was before the fast path: email-validator alone (or its refusal)."""
    given_ = address.strip()
    try:
        return given_, validate_email(given_, check_deliverability=False).normalized.casefold()
    except EmailNotValidError as exc:
        return f"refused: {exc}"


def fast(address: str) -> tuple[str, str] | str:
    try:
        return email_key(address)
    except EmailNotValidError as exc:
        return f"refused: {exc}"


def agrees(address: str) -> None:
    """The fast path, where it answers, gives email-validator's ``normalized`` exactly;
    and email_key gives what email-validator alone gave."""
    stripped = address.strip()
    mine = plain_normalized(stripped)
    if mine is not None:
        assert validate_email(stripped, check_deliverability=False).normalized == mine
    assert fast(address) == reference(address)


LONG_LABEL = "a" * 63
TRICKY = [
    "person.1@example.org",
    "Person.One@Example.ORG",
    "  padded@example.org \t",
    "\u00a0nbsp@example.org\u2003",
    "line@example.org\n",
    "Info@Example.org",
    "POSTMASTER@EXAMPLE.ORG",
    "abuse@x.org",
    "www.abuse@x.org",
    "josé@example.org",
    "jose@bücher.de",
    "jose@BÜCHER.de",
    "jose@xn--bcher-kva.de",
    "jose@XN--BCHER-KVA.DE",
    "a@xn--zz.org",
    "a@ab--cd.org",
    "a@a--b.org",
    "a@ｅｘａｍｐｌｅ.org",
    "a@example\uff0eorg",
    "a@example.\u212aorg",  # Kelvin sign: UTS-46 maps it to k
    "\u212a@example.org",
    "İstanbul@example.org",
    "straße@example.org",
    "STRASSE@example.org",
    "ǅemal@example.org",
    "e\u0301@example.org",
    "\u0301e@example.org",
    '"quoted"@example.org',
    '"with space"@example.org',
    '"with\\"quote"@example.org',
    '"a@b"@example.org',
    "A Person <a@example.org>",
    "<a@example.org>",
    "a@[192.0.2.1]",
    "a@[IPv6:2001:db8::1]",
    "a@localhost",
    "a@example.local",
    "a@x.test",
    "a@test",
    "a@x.onion",
    "a@1.in-addr.arpa",
    "a@x.invalid",
    "a@x.invalid.org",
    "a@example",
    "a@example.c0",
    "a@example.123",
    "a@-example.org",
    "a@example-.org",
    "a@example.-org",
    "a@example.org-",
    "a@example..org",
    "a@.example.org",
    "a@example.org.",
    ".a@example.org",
    "a.@example.org",
    "a..b@example.org",
    "a b@example.org",
    "a@exa mple.org",
    "a@@example.org",
    "@example.org",
    "a@",
    "a",
    "",
    "   ",
    "a@example.org@example.org",
    "a\x00@example.org",
    "a@exam_ple.org",
    "!#$%&'*+-/=?^_`{|}~@example.org",
    "a@" + LONG_LABEL + ".org",
    "a@" + LONG_LABEL + "a.org",
    "a@example." + LONG_LABEL,
    "a@example." + LONG_LABEL + "a",
    "a" * 64 + "@example.org",
    "a" * 65 + "@example.org",
    "a" * 242 + "@example.org",  # 254 characters
    "a" * 243 + "@example.org",  # 255
    "a@" + ".".join([LONG_LABEL] * 3) + "." + "a" * 61,  # a 253-character domain
    "a@" + ".".join([LONG_LABEL] * 3) + "." + "a" * 62,
    "a@" + "b." * 120 + "org",
    "=SUM(1)@example.org",
    "'=a@example.org",
]


@pytest.mark.parametrize("address", TRICKY)
def test_tricky_addresses_agree(address):
    agrees(address)


def test_plain_addresses_take_the_fast_path():
    """Otherwise the path could be 'right' by never answering."""
    for address in ["person.1@example.org", "Ana.Lima@Mail.Example.ORG", "o'brien+x@a-b.co.uk"]:
        assert plain_normalized(address) is not None
    assert plain_normalized("Info@Example.org") == "info@example.org"
    assert plain_normalized("Ana@Example.ORG") == "Ana@example.org"


ATEXT = "abcXYZ019!#$%&'*+-/=?^_`{|}~"
LOCAL_CHARS = ATEXT + '.. "\\@<>()[],;:éßİ\u212a\u0301\u00a0\t'
DOMAIN_CHARS = "abcxnXN019-.-_ üÉ\uff0e\u212a\u3002"
TLDS = ["org", "ORG", "com", "de", "c0", "123", "test", "local", "localhost", "onion", "arpa"]
TLDS += ["invalid", "xn--p1ai", "x", "-org", "org-", "", "a" * 63, "a" * 64]
labels = st.text(DOMAIN_CHARS, min_size=0, max_size=12) | st.sampled_from(
    ["xn--bcher-kva", "ab--c"]
)
domains = st.builds(
    lambda parts, tld: ".".join([*parts, tld]),
    st.lists(labels, min_size=0, max_size=4),
    st.sampled_from(TLDS) | st.text(DOMAIN_CHARS, max_size=6),
)
locals_ = st.text(LOCAL_CHARS, min_size=0, max_size=20) | st.sampled_from(
    ["info", "INFO", "Support", "postmaster", "news", '"a b"', '"abc"', "a" * 250]
)
padding = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u2003"])
addresses = st.builds(
    lambda pad1, local, at, domain, pad2: pad1 + local + at + domain + pad2,
    padding,
    locals_,
    st.sampled_from(["@", "@", "@", "@@", "＠", ""]),
    domains,
    padding,
)
# Near the edge: plain addresses, then one character put in, swapped or taken out.
plain_labels = st.text("abcXYZ09-", min_size=1, max_size=8)
plain = st.builds(
    lambda local, parts, tld: local + "@" + ".".join([*parts, tld]),
    st.text(ATEXT + ".", min_size=1, max_size=12),
    st.lists(plain_labels, min_size=1, max_size=3),
    st.sampled_from(TLDS[:11]),
)
ODD = '@. -"<>_\t\u00a0é\u212a\u0301\uff0e' + "xn--"


@st.composite
def edited(draw: st.DrawFn) -> str:
    address = draw(plain)
    at = draw(st.integers(0, len(address)))
    kind = draw(st.sampled_from(["insert", "replace", "delete", "none"]))
    odd = draw(st.sampled_from(ODD))
    if kind == "insert":
        return address[:at] + odd + address[at:]
    if kind == "replace":
        return address[:at] + odd + address[at + 1 :]
    if kind == "delete":
        return address[:at] + address[at + 1 :]
    return address


CHECKS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CHECKS
@given(addresses)
@example("Person@Example.ORG")
def test_generated_addresses_agree(address):
    agrees(address)


@CHECKS
@given(plain | edited())
def test_near_plain_addresses_agree(address):
    agrees(address)


@CHECKS
@given(st.emails())
def test_hypothesis_emails_agree(address):
    agrees(address)
    agrees(address.upper())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_agrees(text):
    agrees(text)
    agrees(text + "@example.org")


# The import's bulk statements (digest/store/bulk.py) write what SQLAlchemy would.


def test_bulk_inserts_store_what_sqlalchemy_stores(tmp_path):
    from datetime import UTC, datetime

    from digest.config import ListSettings
    from digest.store import audience as store
    from digest.store import bulk, open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'b.db'}", tmp_path)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # no microseconds: SQLite still writes .000000

    def person(key: str) -> dict:
        return {
            "email": key.upper(),
            "email_key": key,
            "name": "Zoë =SUM(1)",
            "status": "active",
            "source": "import people.csv",
            "created": now,
            "confirmed": None,
            "timezone": "Pacific/Honolulu",
        }

    with engine.begin() as conn:
        by_sqlalchemy = store.add_subscribers(conn, [person("a@example.org")])
        by_bulk = bulk.add_subscribers(conn, [person("b@example.org"), person("c@example.org")])
        assert set(by_bulk) == {"b@example.org", "c@example.org"}
        rows = conn.exec_driver_sql(
            "SELECT id, email_key, name, status, source, created, confirmed, unsubscribed, "
            "timezone FROM subscribers ORDER BY email_key"
        ).fetchall()
    ids = by_sqlalchemy | by_bulk
    assert [(row[0], row[1]) for row in rows] == [(ids[row[1]], row[1]) for row in rows]
    assert rows[1][2:] == rows[0][2:] == rows[2][2:]  # the same text, to the microsecond

    def membership(sid: int) -> dict:
        return {
            "subscriber_id": sid,
            "list_slug": "weekly",
            "status": "pending",
            "format": "text",
            "profile": None,
            "created": now,
        }

    with engine.begin() as conn:
        store.sync_lists(conn, [ListSettings(slug="weekly", name="Weekly")])
        store.add_memberships(conn, [membership(ids["a@example.org"])])
        bulk.add_memberships(conn, [membership(ids["b@example.org"])])
        stored = conn.exec_driver_sql("SELECT * FROM memberships ORDER BY subscriber_id").fetchall()
    assert [row[0] for row in stored] == [ids["a@example.org"], ids["b@example.org"]]
    assert stored[0][1:] == stored[1][1:]


def test_bulk_statements_fit_an_old_sqlite_limit_of_999_parameters(tmp_path):
    import sqlite3
    from datetime import UTC, datetime

    from digest.store import audience as store
    from digest.store import bulk, open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'b.db'}", tmp_path)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    keys = [f"p{i}@example.org" for i in range(3000)]
    with engine.begin() as conn:
        conn.connection.driver_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        rows = [
            {"email": k, "email_key": k, "name": "", "status": "active", "source": "s",
             "created": now, "confirmed": now, "timezone": None}
            for k in keys
        ]  # fmt: skip
        ids = bulk.add_subscribers(conn, rows)
        store.suppress(conn, keys[7], keys[7], reason="bounced", origin="test", now=now)
        known = bulk.known_for_import(conn, "weekly", [*keys, "nobody@example.org"])
        suppressed = bulk.suppressed_among(conn, keys, store.no_marks)
    assert len(ids) == len(known) == 3000
    assert {k: v.id for k, v in known.items()} == ids
    assert suppressed == [keys[7]]
