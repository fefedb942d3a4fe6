"""The edition for a reader who chose some of its sections (a section variant)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from digest.config import Settings
from digest.edition import EditionPlan, make_preheader, make_subject
from digest.models import Edition


def for_sections(settings: Settings, edition: Edition, chosen: Collection[str]) -> Edition:
    """The edition for a reader who chose some sections: the editor's note (it always
    comes) and those sections. A subject or preheader made from the headlines is made
    again from what is left; one staff wrote stays."""
    kept = [s for s in edition.sections if s.key in chosen]
    subject, preheader = edition.subject, edition.preheader
    whole = list(edition.sections)
    if preheader == make_preheader(edition.editor_note, whole):
        preheader = make_preheader(edition.editor_note, kept)
    plan = EditionPlan(edition.id, edition.since, edition.cutoff, None)
    if "{top}" in settings.edition.subject and subject == make_subject(settings, plan, whole):
        subject = make_subject(settings, plan, kept)
    return replace(edition, subject=subject, preheader=preheader, sections=tuple(kept))
