"""The print edition as files (a PDF and e-message parts per facility profile) and the short
email that carries them to prisoner-support contacts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from digest.config import PrintProfile, Settings
from digest.models import Attachment, Edition, RenderedEmail
from digest.render.branding import edition_title
from digest.render.templates import text_env
from digest.render.text import wrap

if TYPE_CHECKING:
    from digest.render.cache import RenderCache

PDF = "application/pdf"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class PrintEdition:
    """A print-ready PDF and what it took to fit the page cap (``render_print``'s)."""

    pdf: bytes
    pages: int
    left_out: int  # items dropped to respect the page cap


@dataclass(frozen=True, slots=True)
class ProfilePrint:
    """What was made for one profile: for the build's summary."""

    profile: str
    pages: int
    left_out: int
    parts: int


def print_files(
    edition: Edition,
    settings: Settings,
    only: Collection[str] | None = None,
    *,
    cache: RenderCache | None = None,
) -> tuple[list[Attachment], list[ProfilePrint]]:
    """``print-<profile>.pdf`` and ``emessage-<profile>-<i>.txt`` for every profile (or
    for the profiles named in ``only``: a section variant's print readers'); each PDF
    from ``cache`` when it has it."""
    files: list[Attachment] = []
    made: list[ProfilePrint] = []
    for profile in settings.print.profiles:
        if only is not None and profile.name not in only:
            continue
        if cache is None:  # WeasyPrint's and lxml's imports: not for a cached build
            from digest.render import print as printing

            printed = printing.render_print(edition, settings, profile)
        else:
            printed = cache.print(edition, settings, profile)
        files.append(Attachment(f"print-{profile.name}.pdf", PDF, printed.pdf))
        title = edition_title(settings, "print")
        if cache is None:
            from digest.render.emessage import emessage_parts

            parts = emessage_parts(edition, settings.organisation, profile, title=title)
        else:
            parts = cache.emessage(edition, settings, profile, title)
        for i, part in enumerate(parts, 1):
            files.append(Attachment(f"emessage-{profile.name}-{i}.txt", TEXT, part.encode()))
        made.append(ProfilePrint(profile.name, printed.pages, printed.left_out, len(parts)))
    return files, made


def files_for(profile: PrintProfile, files: list[Attachment]) -> list[Attachment]:
    """One profile's PDF and parts, parts in order."""
    pdf = [f for f in files if f.filename == f"print-{profile.name}.pdf"]
    prefix = f"emessage-{profile.name}-"
    parts = [f for f in files if f.filename.startswith(prefix) and f.filename.endswith(".txt")]
    parts.sort(key=lambda f: int(f.filename[len(prefix) : -len(".txt")]))
    return pdf + parts


def print_notice(
    settings: Settings,
    profile: PrintProfile,
    *,
    subject: str,
    cutoff: datetime,
    archive_url: str,
    files: list[Attachment],
) -> RenderedEmail:
    """The text-only email that carries one profile's print edition."""
    zone = settings.organisation.zone
    text = (
        text_env()
        .get_template("email/print.txt.j2")
        .render(
            org=settings.organisation,
            profile=profile,
            archive_url=archive_url,
            wrap=wrap,
            files=[f.filename for f in files],
            footer_links=settings.branding.footer_links,
            date=(cutoff - timedelta(microseconds=1)).astimezone(zone),
        )
    )
    text = "\n".join(line.rstrip() for line in text.strip().split("\n")) + "\n"
    return RenderedEmail(f"{subject} (print edition)", "", text)
