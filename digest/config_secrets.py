"""Secrets, and where to reach the services, from the environment only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Secrets:
    """Secrets come only from the environment and are never printed."""

    sendgrid_api_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    previous_secret_key: str | None = field(default=None, repr=False)
    webhook_public_key: str | None = field(default=None, repr=False)
    sendgrid_host: str | None = None
    # The DNS server `digest check` asks (host or host:port); default: the system's.
    dns_server: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        e = os.environ if env is None else env
        return cls(
            sendgrid_api_key=e.get("SENDGRID_API_KEY") or None,
            secret_key=e.get("DIGEST_SECRET_KEY") or None,
            previous_secret_key=e.get("DIGEST_SECRET_KEY_PREVIOUS") or None,
            webhook_public_key=e.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
            sendgrid_host=e.get("DIGEST_SENDGRID_HOST") or None,
            dns_server=e.get("DIGEST_DNS_SERVER") or None,
        )
