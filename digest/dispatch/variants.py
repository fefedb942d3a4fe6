"""Which rendering of an edition one recipient gets: its variant's name in the ledger.

A variant's name is its base, then, for a reader who chose some sections only, ``~``
and the chosen section keys, sorted, joined by ``+``:

    html            the whole edition, HTML with a text part
    text            the whole edition, text only
    print:<profile> the whole print edition of one facility profile
    html~events     the editor's note and events only, HTML with a text part
    print:inside~events+news

A choice is carried only when the build rendered it (see :func:`wanted_choices`: the
most-read ``edition.max_section_variants`` choices); anyone else gets the whole edition.
Only the weekly edition has sections to choose from: alerts and welcomes go whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from digest.config import Settings
from digest.lifecycle.states import Kind
from digest.models import Recipient
from digest.store import editions as editions_store
from digest.store.editions import StoredEdition

PRINT = "print"
CHOICE = "~"  # between a variant's base and its choice
JOIN = "+"  # between the chosen section keys
NAME_CHARS = 100  # batches.variant's length: a longer name (long section keys) goes whole

Choice = frozenset[str]


def variant_of(settings: Settings, person: Recipient) -> str:
    """html, text, or ``print:<profile>`` (one rendering each, shared by its batches)."""
    if person.format == PRINT:
        return f"{PRINT}:{settings.print.profile_named(person.profile).name}"
    return person.format


def choice_of(settings: Settings, sections: Iterable[str] | None) -> Choice | None:
    """The configured sections a reader chose, or None for the whole edition (no choice,
    every section, or only sections no longer configured)."""
    if sections is None:
        return None
    configured = set(settings.edition.sections)
    chosen = frozenset(sections) & configured
    if not chosen or chosen == configured:
        return None
    return chosen


def choice_token(choice: Choice) -> str:
    """``events+news``: the choice in a variant's name and in its stored files' names."""
    return JOIN.join(sorted(choice))


def with_choice(base: str, choice: Choice | None) -> str:
    """The variant ``base`` for readers of ``choice`` (None: the whole edition)."""
    return base if choice is None else f"{base}{CHOICE}{choice_token(choice)}"


def print_profile_of(base: str) -> str | None:
    """``print:inside`` -> ``inside``; None for a base that is not a print edition's."""
    kind, _, profile = base.partition(":")
    return profile if kind == PRINT and profile else None


def base_of(variant: str) -> str:
    """``html~events`` -> ``html``: the rendering's kind, whatever the choice."""
    return variant.partition(CHOICE)[0]


def format_of(variant: str) -> str:
    """The format its recipients chose (a membership's): ``html~events`` -> ``html``,
    ``print:inside`` -> ``print``."""
    return base_of(variant).partition(":")[0]


@dataclass(slots=True)
class Wanted:
    """The choices in use among an edition's readers: what the build renders."""

    readers: Counter[Choice] = field(default_factory=Counter)
    email: set[Choice] = field(default_factory=set)  # choices html or text readers made
    prints: dict[Choice, set[str]] = field(default_factory=dict)  # choice -> profiles
    kept: list[Choice] = field(default_factory=list)  # rendered, most-read first
    over_cap: int = 0  # readers whose choice was not rendered: they get the whole edition

    @property
    def left_out(self) -> int:
        """How many distinct choices the cap left out."""
        return len(self.readers) - len(self.kept)


def wanted_choices(settings: Settings, people: Iterable[Recipient]) -> Wanted:
    """Count the readers of each choice and keep the ``edition.max_section_variants``
    most read (ties by name, so two builds keep the same ones)."""
    wanted = Wanted()
    for person in people:
        choice = choice_of(settings, person.sections)
        if choice is None:
            continue
        wanted.readers[choice] += 1
        profile = print_profile_of(variant_of(settings, person))
        if profile is not None:
            wanted.prints.setdefault(choice, set()).add(profile)
        else:
            wanted.email.add(choice)
    ranked = sorted(wanted.readers, key=lambda c: (-wanted.readers[c], choice_token(c)))
    wanted.kept = ranked[: settings.edition.max_section_variants]
    wanted.over_cap = sum(wanted.readers[c] for c in ranked[len(wanted.kept) :])
    return wanted


@dataclass(frozen=True, slots=True)
class Rendered:
    """Which choices an edition was rendered for: email, and print per profile."""

    email: frozenset[str] = frozenset()  # choice tokens
    prints: frozenset[tuple[str, str]] = frozenset()  # (choice token, profile)


def rendered_choices(conn: Connection, edition_id: str) -> Rendered:
    """What the build stored for ``edition_id``'s section variants."""
    email, prints = set(), set()
    for token, name in editions_store.variant_file_names(conn, edition_id):
        if name == editions_store.VARIANT_HTML:
            email.add(token)
        elif name.startswith("print-") and name.endswith(".pdf"):
            prints.add((token, name[len("print-") : -len(".pdf")]))
    return Rendered(frozenset(email), frozenset(prints))


def variant_chooser(
    settings: Settings, conn: Connection, edition: StoredEdition
) -> Callable[[Recipient], str]:
    """How a send of ``edition`` names each recipient's variant (made once per plan)."""
    rendered = rendered_choices(conn, edition.id) if edition.kind == Kind.WEEKLY else Rendered()

    def choose(person: Recipient) -> str:
        base = variant_of(settings, person)
        choice = choice_of(settings, person.sections)
        if choice is None:
            return base
        token = choice_token(choice)
        profile = print_profile_of(base)
        made = (token, profile) in rendered.prints if profile else token in rendered.email
        name = with_choice(base, choice)
        return name if made and len(name) <= NAME_CHARS else base

    return choose
