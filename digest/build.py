"""Build: plan the week's edition, assemble it, render it once, store it and write the files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from digest.config import Settings
from digest.edition import EditionPlan, assemble, plan_edition
from digest.errors import DigestError
from digest.lifecycle.states import Kind, store_edition
from digest.models import Attachment, Edition, RenderedEmail
from digest.render import render_email
from digest.render.print_edition import ProfilePrint, print_files
from digest.store import editions


@dataclass(slots=True)
class BuildResult:
    plan: EditionPlan
    edition: Edition | None = None
    email: RenderedEmail | None = None
    folder: Path | None = None
    unplaced: dict[str, int] = field(default_factory=dict)
    prints: list[ProfilePrint] = field(default_factory=list)

    @property
    def html_bytes(self) -> int:
        return len(self.email.html.encode()) if self.email else 0


def build(
    settings: Settings,
    engine: Engine,
    *,
    week: str | None,
    out: Path | None,
    force: bool,
    now: datetime,
    who: str = "scheduler",
) -> BuildResult:
    """Build the edition for ``week`` (default: this week); nothing when nothing is new."""
    plan = plan_edition(settings, engine, week, now)
    assembled = assemble(settings, engine, plan, force=force)
    result = BuildResult(plan, assembled.edition, unplaced=assembled.unplaced)
    if assembled.edition is None:
        return result
    result.email = render_email(assembled.edition, settings)
    files, result.prints = print_files(assembled.edition, settings)
    with engine.begin() as conn:
        store_edition(conn, assembled.edition, result.email, kind=Kind.WEEKLY, who=who, now=now)
        editions.save_files(conn, plan.id, files)
    result.folder = out or settings.var_dir / "editions" / plan.id
    write_files(result.folder, assembled.edition, result.email, files)
    return result


def write_files(
    folder: Path, edition: Edition, email: RenderedEmail, extra: list[Attachment]
) -> None:
    """email.html, email.txt, edition.json and the print files, each replaced atomically.

    E-message parts left from an earlier build of this folder are removed first, so
    the folder never mixes two builds' parts.
    """
    files = {
        "email.html": email.html.encode(),
        "email.txt": email.text.encode(),
        "edition.json": (
            json.dumps(edition.to_json(), indent=2, ensure_ascii=False) + "\n"
        ).encode(),
    } | {f.filename: f.data for f in extra}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("emessage-*.txt"):
            stale.unlink()
        for name, data in files.items():
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
    except OSError as exc:
        raise DigestError(
            f"cannot write the edition to {folder} ({exc.strerror}): pick another --out folder"
        ) from None
