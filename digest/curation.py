"""Staff's choices for one weekly edition, applied whenever it is assembled: an item left
out, moved within its section, pinned, or with its title and summary rewritten for this
edition only (the stored item stays as its feed gave it); the edition's own subject and
preheader. Choices are kept by edition and item, so a rebuild adds new items and keeps
every choice; HTML, text, print and e-message parts all come from the one assembled
edition, so they all follow."""

from __future__ import annotations

from dataclasses import dataclass, replace

from digest.models import Item
from digest.store.choices import WHOLE, Choice

UNPLACED = 1 << 30  # items nobody moved come after the ones that were, in the usual order


def apply_choices(found: list[Item], chosen: dict[str, Choice]) -> list[Item]:
    """The items as this edition shows them: left-out ones gone, the rest rewritten."""
    shown = []
    for item in found:
        choice = chosen.get(item.key)
        if choice is None:
            shown.append(item)
        elif not choice.left_out:
            shown.append(
                replace(
                    item,
                    title=choice.title or item.title,
                    summary=item.summary if choice.summary is None else choice.summary,
                    pinned=item.pinned if choice.pinned is None else choice.pinned,
                )
            )
    return shown


def item_order(item: Item, chosen: dict[str, Choice]) -> tuple[bool, int, float, str]:
    """Pinned first; then those staff placed, in their places; then the newest first."""
    choice = chosen.get(item.key)
    place = choice.position if choice is not None and choice.position is not None else UNPLACED
    return (not item.pinned, place, -item.published.timestamp(), item.key)


def subject_and_preheader(
    chosen: dict[str, Choice], subject: str, preheader: str
) -> tuple[str, str]:
    """The edition's subject and preheader: staff's where they wrote one."""
    whole = chosen.get(WHOLE)
    if whole is None:
        return subject, preheader
    return whole.title or subject, whole.summary or preheader


@dataclass(frozen=True, slots=True)
class Candidate:
    """One item the edition could show, as the console's Contents list shows it."""

    item: Item  # as this edition shows it (rewritten where staff did)
    original: Item  # as the feed gave it
    section: str
    left_out: bool
    in_email: bool  # False: over the section's cap (the website has it)
    edited: bool
