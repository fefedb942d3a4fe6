"""Signed tokens for the links in every email (unsubscribe, preferences, confirm) and their keys.

A token names its purpose, subscriber, list and the time it was made (a confirm token
also the sign-up request it confirms, and nothing else), signed with HMAC-SHA256.
Unsubscribe and preferences tokens never expire (a years-old email must still
unsubscribe); confirm tokens do. During a key rotation the previous key
(DIGEST_SECRET_KEY_PREVIOUS) still verifies.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import os
import secrets as _secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.errors import ConfigError
from digest.paths import private_folder

log = logging.getLogger(__name__)

PURPOSES = frozenset({"unsubscribe", "preferences", "confirm"})
EXPIRING = {"confirm": timedelta(days=7)}
# What the key is derived for that marks a forgotten address (never the signing key itself).
FORGET_PURPOSE = b"digest: the addresses of people who asked to be forgotten"
KEY_FILE = "secret.key"
MIN_KEY_LENGTH = 16


@dataclass(frozen=True, slots=True)
class TokenClaims:
    purpose: str
    subscriber_id: int
    list_slug: str
    issued: datetime
    ref: int | None = None  # the sign-up request a confirm token confirms


@dataclass(frozen=True, slots=True)
class Keyring:
    """The key that signs, and the keys that still verify."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)

    def make(
        self,
        purpose: str,
        subscriber_id: int,
        list_slug: str,
        *,
        now: datetime,
        ref: int | None = None,
    ) -> str:
        """A URL-safe token binding purpose, subscriber and list (and a request, ``ref``)."""
        return self.make_at(purpose, subscriber_id, list_slug, int(now.timestamp()), ref=ref)

    def make_at(
        self,
        purpose: str,
        subscriber_id: int,
        list_slug: str,
        issued: int,
        *,
        ref: int | None = None,
    ) -> str:
        """:meth:`make` with the time as whole seconds (a send's batch makes thousands)."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        claims = f"{purpose}:{subscriber_id}:{list_slug}:{issued}"
        if ref is not None:
            claims += f":{ref}"
        payload = _b64(claims.encode())
        return f"{payload}.{_signature(self.current, payload)}"

    def pair_at(
        self, first: str, second: str, list_slug: str, issued: int
    ) -> Callable[[int], tuple[str, str]]:
        """For a subscriber id, its tokens for ``first`` and ``second`` on one list at one
        time: the same as two :meth:`make_at`, in a fifth of the time (a send makes two a
        recipient). A purpose and its colon fill whole base64 groups (12 bytes for
        unsubscribe and preferences), so a payload is that head's base64, worked out once,
        and the base64 of the rest, shared by both."""
        for purpose in (first, second):
            if purpose not in PURPOSES:
                raise ValueError(f"unknown token purpose {purpose!r}")
        heads = [f"{purpose}:".encode() for purpose in (first, second)]
        if any(len(head) % 3 for head in heads):

            def slowly(subscriber_id: int) -> tuple[str, str]:
                one = self.make_at(first, subscriber_id, list_slug, issued)
                return one, self.make_at(second, subscriber_id, list_slug, issued)

            return slowly
        head1, head2 = (_b64(head).encode() for head in heads)
        rest = f":{list_slug}:{issued}"
        inner, outer = _pads(self.current)
        b64, safe = binascii.b2a_base64, _URLSAFE

        def sign(payload: bytes) -> bytes:
            first_pass = inner.copy()
            first_pass.update(payload)
            second_pass = outer.copy()
            second_pass.update(first_pass.digest())
            # 20 bytes are 28 base64 characters, the last of them padding.
            return b64(second_pass.digest()[:20], newline=False).translate(safe)[:27]

        def pair(subscriber_id: int) -> tuple[str, str]:
            tail = b64(f"{subscriber_id}{rest}".encode(), newline=False).translate(safe)
            tail = tail.rstrip(b"=")
            one, two = head1 + tail, head2 + tail
            return (
                (one + b"." + sign(one)).decode(),
                (two + b"." + sign(two)).decode(),
            )

        return pair

    def pairs_at(
        self, first: str, second: str, people: list[tuple[int, str]], issued: int
    ) -> list[tuple[str, str]]:
        """:meth:`pair_at` for many (subscriber id, list) at one time, in order: a batch's
        thousand. The same tokens with a fifth fewer calls a recipient: every signature
        of the batch goes through base64 in one call, 20 bytes and a zero byte each (21
        bytes are whole base64 groups, and a zero fills the last group as the encoder's
        own padding bits do), so each signature's 27 characters are a slice of it."""
        heads = [f"{purpose}:".encode() for purpose in (first, second)]
        if any(len(head) % 3 for head in heads) or not PURPOSES.issuperset((first, second)):
            return [
                self.pair_at(first, second, slug, issued)(subscriber_id)
                for subscriber_id, slug in people
            ]
        head1, head2 = (_b64(head).encode() for head in heads)
        inner, outer = _pads(self.current)
        first_pass, second_pass = inner.copy(), inner.copy()
        first_pass.update(head1)
        second_pass.update(head2)
        copy1, copy2, again = first_pass.copy, second_pass.copy, outer.copy
        b64, safe = binascii.b2a_base64, _URLSAFE
        rests: dict[str, str] = {}
        tails: list[bytes] = []
        signatures: list[bytes] = []
        keep_tail, keep_signature = tails.append, signatures.append
        for subscriber_id, slug in people:
            rest = rests.get(slug)
            if rest is None:
                rest = rests[slug] = f":{slug}:{issued}"
            tail = b64(f"{subscriber_id}{rest}".encode(), newline=False).translate(safe)
            tail = tail.rstrip(b"=")
            keep_tail(tail)
            one = copy1()
            one.update(tail)
            signed = again()
            signed.update(one.digest())
            keep_signature(signed.digest()[:20])
            two = copy2()
            two.update(tail)
            signed = again()
            signed.update(two.digest())
            keep_signature(signed.digest()[:20])
        signatures.append(b"")
        signed_all = b64(b"\0".join(signatures), newline=False).translate(safe).decode()
        # "." is not a base64url character: the tails, split again, are as they were.
        texts = b".".join(tails).decode().split(".") if tails else []
        h1, h2 = head1.decode(), head2.decode()
        return [
            (
                f"{h1}{tail}.{signed_all[at : at + 27]}",
                f"{h2}{tail}.{signed_all[at + 28 : at + 55]}",
            )
            for tail, at in zip(texts, range(0, 56 * len(texts), 56), strict=True)
        ]

    def check(self, token: str, purpose: str, *, now: datetime) -> TokenClaims | None:
        """The claims when the token is genuine, made for ``purpose`` and not expired."""
        payload, _, signature = token.strip().partition(".")
        if not payload or not signature:
            return None
        if not any(
            hmac.compare_digest(signature, _signature(key, payload))
            for key in (self.current, *self.previous)
        ):
            return None
        claims = _claims(payload)
        if claims is None or claims.purpose != purpose:
            return None
        max_age = EXPIRING.get(purpose)
        if max_age is not None and not (claims.issued <= now <= claims.issued + max_age):
            return None
        return claims

    def forgotten(self, email_key: str) -> tuple[str, ...]:
        """The suppression keys a forgotten address leaves, ``forgotten:<hex>``: HMAC-SHA256
        of its key under a key derived for that alone; the current key's mark first, then
        the previous keys' (so a key rotation does not bring anyone back)."""
        return tuple(_forget_mark(key, email_key) for key in (self.current, *self.previous))


def _forget_mark(key: bytes, email_key: str) -> str:
    purpose_key = hmac.new(key, FORGET_PURPOSE, hashlib.sha256).digest()
    digest = hmac.new(purpose_key, email_key.encode(), hashlib.sha256).hexdigest()
    return f"forgotten:{digest}"


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding (binascii straight: a send makes two a recipient)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _signature(key: bytes, payload: str) -> str:
    return _b64(_hmac_sha256(key, payload.encode("ascii"))[:20])


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104, the same bytes as ``hmac.digest``) from the key's inner and
    outer states worked out once: a send signs two tokens a recipient, and this is a
    quarter of ``hmac.digest``'s time."""
    inner, outer = _pads(key)
    first = inner.copy()
    first.update(message)
    second = outer.copy()
    second.update(first.digest())
    signed: bytes = second.digest()
    return signed


@functools.lru_cache(maxsize=8)
def _pads(key: bytes) -> tuple[Any, Any]:
    block = 64  # SHA-256's block size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _claims(payload: str) -> TokenClaims | None:
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        purpose, sid, slug, issued, *rest = raw.split(":")
        if len(rest) > 1:
            return None
        ref = int(rest[0]) if rest else None
        stamp = datetime.fromtimestamp(int(issued), UTC)
        return TokenClaims(purpose, int(sid), slug, stamp, ref)
    except (ValueError, UnicodeDecodeError, OverflowError, OSError):
        return None


def keyring(
    secret_key: str | None, previous_key: str | None, var_dir: Path, *, may_create: bool
) -> Keyring:
    """DIGEST_SECRET_KEY (and DIGEST_SECRET_KEY_PREVIOUS); else a key the demo kept in ``var/``.

    Only the demo may create that file: real mail needs the environment variable, so
    links keep working when the machine is replaced.
    """
    previous = (previous_key.encode(),) if previous_key else ()
    if secret_key:
        if len(secret_key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"DIGEST_SECRET_KEY is shorter than {MIN_KEY_LENGTH} characters: "
                "use a long random string"
            )
        return Keyring(secret_key.encode(), previous)
    path = var_dir / KEY_FILE
    if path.exists():
        return Keyring(path.read_text(encoding="ascii").strip().encode(), previous)
    if not may_create:
        raise ConfigError(
            "DIGEST_SECRET_KEY is not set: set it in the environment to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))'); it signs the "
            "unsubscribe and preferences links"
        )
    private_folder(var_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(_secrets.token_urlsafe(48))
    log.info("created a signing key for the demo in %s", path)
    return Keyring(path.read_text(encoding="ascii").strip().encode(), previous)
