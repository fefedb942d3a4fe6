"""The [checks] table: what each check before a send does when it finds a problem.

``warn`` shows the problem (console, ``digest build``, the staff preview); ``block``
also keeps the edition from being approved or sent until staff fix it or override it
with a reason; ``off`` skips the check.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Policy = Literal["warn", "block", "off"]


class CheckSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    links: Policy = "warn"
    spam: Policy = "block"
    accessibility: Policy = "warn"
    # Gmail cuts an email's HTML past 102 KB ("[Message clipped]"), the footer with the
    # unsubscribe link first.
    size: Policy = "warn"
    # SpamAssassin points above which the spam check fails (its own default is 5.0).
    spam_threshold: float = Field(default=5.0, gt=0)
    link_timeout_seconds: float = Field(default=10.0, gt=0)
    links_per_host: int = Field(default=2, ge=1, le=10)
    link_cache_hours: float = Field(default=24.0, ge=0)
    max_links: int = Field(default=500, ge=1)
    # host:port pairs a link may point to although they are private (an intranet).
    allow_private_links: list[str] = Field(default_factory=list)

    @field_validator("allow_private_links")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for entry in value:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{entry!r} is not host:port (e.g. 'intranet.local:443')")
        return value

    def policy_of(self, check: str) -> Policy:
        policy: Policy = getattr(self, check)
        return policy
