"""Which rendering of an edition one recipient gets: its variant's name in the ledger."""

from __future__ import annotations

from digest.config import Settings
from digest.models import Recipient

PRINT = "print"


def variant_of(settings: Settings, person: Recipient) -> str:
    """html, text, or ``print:<profile>`` (one rendering each, shared by its batches)."""
    if person.format == PRINT:
        return f"{PRINT}:{settings.print.profile_named(person.profile).name}"
    return person.format
