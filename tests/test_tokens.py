"""Signed links: forged, truncated, cross-purpose, expired and rotated tokens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.audience.tokens import Keyring, keyring
from digest.errors import ConfigError
from tests.conftest import NOW

KEYS = Keyring(b"k" * 32)


def test_a_token_carries_its_subscriber_list_and_purpose() -> None:
    token = KEYS.make("unsubscribe", 42, "weekly", now=NOW)
    claims = KEYS.check(token, "unsubscribe", now=NOW)
    assert claims is not None
    assert (claims.purpose, claims.subscriber_id, claims.list_slug) == ("unsubscribe", 42, "weekly")


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_truncated_tokens_are_refused(cut: int) -> None:
    token = KEYS.make("unsubscribe", 42, "weekly", now=NOW)
    assert KEYS.check(token[:-cut], "unsubscribe", now=NOW) is None


def test_forged_and_retargeted_tokens_are_refused() -> None:
    token = KEYS.make("unsubscribe", 42, "weekly", now=NOW)
    signature = token.split(".")[1]
    other_subscriber = KEYS.make("unsubscribe", 43, "weekly", now=NOW).split(".")[0]
    other_list = KEYS.make("unsubscribe", 42, "alerts", now=NOW).split(".")[0]
    for forged in (
        f"{other_subscriber}.{signature}",
        f"{other_list}.{signature}",
        token.replace(".", ".x", 1),
        "garbage",
        "",
        "a.b",
    ):
        assert KEYS.check(forged, "unsubscribe", now=NOW) is None
    assert Keyring(b"another key entirely!").check(token, "unsubscribe", now=NOW) is None


def test_a_token_for_one_purpose_does_nothing_for_another() -> None:
    token = KEYS.make("preferences", 42, "weekly", now=NOW)
    assert KEYS.check(token, "unsubscribe", now=NOW) is None
    assert KEYS.check(token, "confirm", now=NOW) is None


def test_confirm_tokens_expire_and_unsubscribe_tokens_never_do() -> None:
    confirm = KEYS.make("confirm", 1, "weekly", now=NOW)
    assert KEYS.check(confirm, "confirm", now=NOW + timedelta(days=6)) is not None
    assert KEYS.check(confirm, "confirm", now=NOW + timedelta(days=8)) is None
    unsubscribe = KEYS.make("unsubscribe", 1, "weekly", now=NOW)
    assert KEYS.check(unsubscribe, "unsubscribe", now=NOW + timedelta(days=3650)) is not None


def test_a_confirm_token_dated_in_the_future_is_refused() -> None:
    """Signed by us but not yet valid (a clock set wrong when it was made): not before."""
    ahead = KEYS.make("confirm", 1, "weekly", now=NOW + timedelta(hours=1))
    assert KEYS.check(ahead, "confirm", now=NOW) is None
    assert KEYS.check(ahead, "confirm", now=NOW + timedelta(hours=1)) is not None


def test_the_previous_key_still_verifies_during_rotation() -> None:
    old = Keyring(b"old key, long enough").make("unsubscribe", 7, "weekly", now=NOW)
    rotated = Keyring(b"new key, long enough", (b"old key, long enough",))
    assert rotated.check(old, "unsubscribe", now=NOW) is not None
    assert Keyring(b"new key, long enough").check(old, "unsubscribe", now=NOW) is None
    fresh = rotated.make("unsubscribe", 7, "weekly", now=NOW)
    assert Keyring(b"new key, long enough").check(fresh, "unsubscribe", now=NOW) is not None


def test_the_key_comes_from_the_environment_and_only_the_demo_makes_one(tmp_path: Path) -> None:
    assert (
        keyring("from-the-environment", None, tmp_path, may_create=False).current
        == b"from-the-environment"
    )
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY is not set"):
        keyring(None, None, tmp_path, may_create=False)
    with pytest.raises(ConfigError, match="shorter"):
        keyring("short", None, tmp_path, may_create=False)
    made = keyring(None, None, tmp_path, may_create=True)
    assert len(made.current) >= 32
    assert keyring(None, None, tmp_path, may_create=False) == made
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_the_fast_signature_is_hmac_sha256(key: bytes, message: bytes) -> None:
    import hmac

    from digest.audience.tokens import _hmac_sha256

    assert _hmac_sha256(key, message) == hmac.digest(key, message, "sha256")


def test_a_batch_of_pairs_is_each_pair_made_one_at_a_time() -> None:
    """Keyring.pairs_at (one base64 call for a batch's signatures) against make_at: ids of
    every length (each tail's base64 ends differently), lists mixed, in their order."""
    keys = Keyring(b"a-test-signing-key-0123456789")
    people = [
        (sid, slug)
        for sid in (1, 12, 123, 4567, 98765, 10**7 + 3)
        for slug in ("a", "ab", "weekly", "events-and-more")
    ]
    people += [(7, "weekly"), (3, "a")]
    for purposes in (("unsubscribe", "preferences"), ("confirm", "unsubscribe")):
        for issued in (0, 17, 1_795_694_400):
            assert keys.pairs_at(*purposes, people, issued) == [
                (
                    keys.make_at(purposes[0], sid, slug, issued),
                    keys.make_at(purposes[1], sid, slug, issued),
                )
                for sid, slug in people
            ]
    assert keys.pairs_at("unsubscribe", "preferences", [], 0) == []
    with pytest.raises(ValueError, match="unknown token purpose"):
        keys.pairs_at("unsubscribe", "everything", [(1, "weekly")], 0)
