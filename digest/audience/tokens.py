"""Signed tokens for the links in every email (unsubscribe, preferences) and their key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets as _secrets
from dataclasses import dataclass
from pathlib import Path

from digest.errors import ConfigError

log = logging.getLogger(__name__)

PURPOSES = frozenset({"unsubscribe", "preferences", "confirm"})
KEY_FILE = "secret.key"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    purpose: str
    subscriber_id: int
    list_slug: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:20])


def make_token(key: bytes, purpose: str, subscriber_id: int, list_slug: str) -> str:
    """A URL-safe token binding subscriber, list and purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    payload = _b64(f"{purpose}:{subscriber_id}:{list_slug}".encode())
    return f"{payload}.{_signature(key, payload)}"


def check_token(key: bytes, token: str, purpose: str) -> TokenClaims | None:
    """The token's claims when it is genuine and made for ``purpose``; None otherwise."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or not hmac.compare_digest(signature, _signature(key, payload)):
        return None
    try:
        kind, sid, slug = _unb64(payload).decode().split(":", 2)
        claims = TokenClaims(kind, int(sid), slug)
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if claims.purpose == purpose else None


def signing_key(secret_key: str | None, var_dir: Path, *, may_create: bool) -> bytes:
    """DIGEST_SECRET_KEY; else a key kept in ``var/`` (created only where allowed).

    Local outbox runs and the demo may create one; sending real mail needs the
    environment variable, so links keep working when the machine is replaced.
    """
    if secret_key:
        return secret_key.encode()
    path = var_dir / KEY_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip().encode()
    if not may_create:
        raise ConfigError(
            "DIGEST_SECRET_KEY is not set: set it in the environment to a long "
            "random string (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    var_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(_secrets.token_urlsafe(48))
    log.warning(
        "DIGEST_SECRET_KEY is not set: links are signed with a new key kept in %s "
        "(fine for the outbox; set DIGEST_SECRET_KEY before sending real mail)",
        path,
    )
    return path.read_text(encoding="ascii").strip().encode()
