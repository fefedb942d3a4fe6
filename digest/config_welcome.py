"""The load-time check of each list's ``welcome`` file (the email someone gets on joining)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import ConfigError

if TYPE_CHECKING:
    from digest.config import ListSettings


def check_welcomes(
    lists: Iterable[ListSettings], resolve: Callable[[str], Path], source: Path
) -> None:
    """Refuse, when the settings are read, a list whose welcome file is not there."""
    for listed in lists:
        if listed.welcome and not resolve(listed.welcome).is_file():
            raise ConfigError(
                f"{source}: list {listed.slug!r}: welcome file {listed.welcome!r} not found "
                f"(looked at {resolve(listed.welcome)}): write it, or remove welcome from "
                "that [[lists]] entry"
            )
