"""The [backup] table: where the daily backup goes and how many are kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BackupSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Relative to config.toml's folder, like every path in it. Keep it on another disk
    # (or copy it off the server): a backup beside the database dies with the disk.
    dir: str = "var/backups"
    keep: int = Field(default=7, ge=1)  # the newest this many; older ones are removed
