"""Which rendering of an edition one recipient gets: its variant's name in the ledger."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from digest.config import Settings
from digest.models import Recipient
from digest.store.editions import StoredEdition

PRINT = "print"


def variant_of(settings: Settings, person: Recipient) -> str:
    """html, text, or ``print:<profile>`` (one rendering each, shared by its batches)."""
    if person.format == PRINT:
        return f"{PRINT}:{settings.print.profile_named(person.profile).name}"
    return person.format


def variant_chooser(
    settings: Settings, conn: Connection, edition: StoredEdition
) -> Callable[[Recipient], str]:
    """How a send of ``edition`` names each recipient's variant (made once per plan)."""

    def choose(person: Recipient) -> str:
        return variant_of(settings, person)

    return choose
