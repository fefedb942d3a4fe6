"""A section variant's renderings: the edition for readers who chose some sections only,
as files stored beside the whole edition's (``sections/<choice>/<name>``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.dispatch.variants import JOIN
from digest.models import Attachment, Edition, RenderedEmail
from digest.render import render_email
from digest.render.print_edition import ProfilePrint, print_files
from digest.store.editions import VARIANT_HTML, VARIANT_SUBJECT, VARIANT_TEXT, variant_file

if TYPE_CHECKING:
    from digest.render.cache import RenderCache

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass(slots=True)
class VariantMade:
    """One choice rendered: its token, the email (when email readers chose it), its files
    (named for storing) and what its print profiles came to."""

    token: str
    edition: Edition
    email: RenderedEmail | None = None
    files: list[Attachment] = field(default_factory=list)
    prints: list[ProfilePrint] = field(default_factory=list)


def render_variant(
    edition: Edition,
    settings: Settings,
    token: str,
    *,
    email: bool,
    profiles: Collection[str],
    cache: RenderCache | None = None,
) -> VariantMade:
    """``edition`` (already cut to the choice) as HTML and text when ``email``, and as the
    print files of ``profiles`` (only those print readers of this choice use: a PDF is slow);
    each from ``cache`` when it has it."""
    made = VariantMade(token, edition)
    if email:
        chosen = named(settings, token)
        if cache is None:
            made.email = render_email(edition, settings, chosen=chosen)
        else:
            made.email = cache.email(edition, settings, chosen=chosen)
        made.files += [
            Attachment(VARIANT_HTML, HTML, made.email.html.encode()),
            Attachment(VARIANT_TEXT, TEXT, made.email.text.encode()),
            Attachment(VARIANT_SUBJECT, TEXT, made.email.subject.encode()),
        ]
    if profiles:
        printed, made.prints = print_files(edition, settings, only=profiles, cache=cache)
        made.files += printed
    made.files = [variant_file(token, f) for f in made.files]
    return made


def named(settings: Settings, token: str) -> str:
    """``events+news`` as its readers know it: "News and Events" (in the edition's order)."""
    keys = token.split(JOIN)
    titles = [settings.edition.title_for(k) for k in settings.edition.sections if k in keys]
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]


def stored_email(files: list[Attachment]) -> RenderedEmail | None:
    """The variant's email from its stored files (None: only print readers chose it)."""
    wanted = (VARIANT_SUBJECT, VARIANT_HTML, VARIANT_TEXT)
    by_name = {f.filename: f.data.decode() for f in files if f.filename in wanted}
    if set(by_name) != set(wanted):
        return None
    return RenderedEmail(*(by_name[name] for name in wanted))
