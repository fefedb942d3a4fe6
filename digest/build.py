"""Build: plan the week's edition, assemble it, render it once, store it and write the files."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from digest.config import Settings
from digest.dispatch.variants import Wanted, choice_token, wanted_choices
from digest.edition import EditionPlan, assemble, plan_edition
from digest.edition_sections import for_sections
from digest.errors import DeliveryError, DigestError
from digest.lifecycle.states import Kind, audience_of, store_edition
from digest.models import Attachment, Edition, RenderedEmail
from digest.render.cache import RenderCache, edition_data
from digest.render.print_edition import ProfilePrint, print_files
from digest.render.section_variants import VariantMade, render_variant
from digest.store import audience, editions

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BuildResult:
    plan: EditionPlan
    edition: Edition | None = None
    email: RenderedEmail | None = None
    folder: Path | None = None
    unplaced: dict[str, int] = field(default_factory=dict)
    prints: list[ProfilePrint] = field(default_factory=list)
    wanted: Wanted = field(default_factory=Wanted)  # the section choices readers made
    variants: list[VariantMade] = field(default_factory=list)  # those rendered

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
    cache = RenderCache.of(settings)  # a rebuild with nothing changed lays nothing out
    result.email = cache.email(assembled.edition, settings)
    files, result.prints = print_files(assembled.edition, settings, cache=cache)
    result.wanted = section_choices(settings, engine)
    result.variants = render_variants(assembled.edition, settings, result.wanted, cache)
    variant_files = [f for made in result.variants for f in made.files]
    with engine.begin() as conn:
        store_edition(conn, assembled.edition, result.email, kind=Kind.WEEKLY, who=who, now=now)
        editions.save_files(conn, plan.id, files + variant_files)
    result.folder = out or settings.var_dir / "editions" / plan.id
    write_files(result.folder, assembled.edition, result.email, files)
    write_variant_files(result.folder, variant_files)
    return result


def section_choices(settings: Settings, engine: Engine) -> Wanted:
    """The section choices the weekly edition's readers made, and which the cap keeps."""
    try:
        slugs = audience_of(settings, Kind.WEEKLY, None)
    except DeliveryError:  # no list for it yet: nobody has chosen anything
        return Wanted()
    with engine.connect() as conn:
        wanted = wanted_choices(settings, audience.recipients_for(conn, slugs))
    if wanted.over_cap:
        log.warning(
            "%d reader(s) chose sections beyond the %d most-read choices "
            "(edition.max_section_variants): they get the whole edition",
            wanted.over_cap,
            settings.edition.max_section_variants,
        )
    return wanted


def render_variants(
    edition: Edition, settings: Settings, wanted: Wanted, cache: RenderCache | None = None
) -> list[VariantMade]:
    """One rendering per kept choice: email for its html and text readers, print for the
    profiles its print readers use (a choice made only on paper gets no email); each from
    ``cache`` when it has it."""
    made = []
    for choice in wanted.kept:
        made.append(
            render_variant(
                for_sections(settings, edition, choice),
                settings,
                choice_token(choice),
                email=choice in wanted.email,
                profiles=wanted.prints.get(choice, set()),
                cache=cache,
            )
        )
    return made


def write_variant_files(folder: Path, files: list[Attachment]) -> None:
    """The section variants under ``folder/sections/<choice>/``, replacing an earlier
    build's (so the folder never mixes two builds' variants)."""
    root = folder / editions.VARIANTS.rstrip("/")
    try:
        shutil.rmtree(root, ignore_errors=True)
        for f in files:
            path = folder / f.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)
    except OSError as exc:
        raise DigestError(
            f"cannot write the section variants to {root} ({exc.strerror}): "
            "pick another --out folder"
        ) from None


def write_files(
    folder: Path, edition: Edition, email: RenderedEmail, extra: list[Attachment]
) -> None:
    """email.html, email.txt, edition.json and the print files, each replaced atomically
    (a file that already holds the same bytes, as a rebuild with nothing changed finds
    them, is left as it is).

    E-message parts left from an earlier build of this folder are removed, so the folder
    never mixes two builds' parts.
    """
    text = json.dumps(edition_data(edition), indent=2, ensure_ascii=False) + "\n"
    files = {
        "email.html": email.html.encode(),
        "email.txt": email.text.encode(),
        "edition.json": text.encode(),
    } | {f.filename: f.data for f in extra}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("emessage-*.txt"):
            if stale.name not in files:
                stale.unlink()
        for name, data in files.items():
            if _holds(folder / name, data):
                continue
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
    except OSError as exc:
        raise DigestError(
            f"cannot write the edition to {folder} ({exc.strerror}): pick another --out folder"
        ) from None


def _holds(path: Path, data: bytes) -> bool:
    """``path`` is a file of exactly ``data`` (its size asked first: most changes show)."""
    try:
        if path.is_symlink() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False
