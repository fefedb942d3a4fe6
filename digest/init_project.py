"""`digest init`: start an organisation (being written)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digest.errors import DigestError


@dataclass(frozen=True, slots=True)
class Answers:
    name: str | None = None
    postal_address: str | None = None
    website: str | None = None
    timezone: str | None = None
    from_email: str | None = None
    base_url: str | None = None


def init_command(folder: Path, given: Answers) -> None:
    raise DigestError("digest init is not ready yet")
