"""`digest backup` and `digest restore` (being written)."""

from __future__ import annotations

from pathlib import Path

from digest.context import App
from digest.errors import DigestError


def backup_command(app: App, *, out: Path | None) -> None:
    raise DigestError("digest backup is not ready yet")


def restore_command(config: Path | None, file: Path, *, force: bool) -> None:
    raise DigestError("digest restore is not ready yet")
