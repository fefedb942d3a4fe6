"""Staff at the editorial desk: collect now, rebuild, and each choice about a weekly
edition (leave an item out, move it, pin it, rewrite its title and summary for this
edition, the subject and preheader). Every choice is stored (``store.choices``), the
edition rebuilt from it at once, and recorded in the audit log under the edition's id. An
edition that has started to go, or went, is no longer changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from digest.build import BuildResult, build
from digest.collect import CollectReport, collect
from digest.context import App
from digest.curation import Candidate, apply_choices, item_order
from digest.edition import EVENTS_SECTION, plan_edition
from digest.errors import DeliveryError
from digest.lifecycle.states import EDITABLE, Kind, State, state_of
from digest.models import Item, ItemKind
from digest.staff import audit
from digest.store import choices, content, editions
from digest.store.choices import WHOLE

MAX_TITLE = 300
MAX_SUMMARY = 2000
EDITOR_NOTE = "editor_note"  # the Contents list's section for the editor's note


@dataclass(frozen=True, slots=True)
class Contents:
    """What a rebuild now would hold, item by item, as the edition's page lists it."""

    candidates: list[Candidate]
    subject: str | None  # staff's, when they wrote one
    preheader: str | None


def editable(app: App, edition_id: str) -> State:
    """The edition's state when staff may still change it; DeliveryError saying why not."""
    with app.engine.connect() as conn:
        state = state_of(conn, edition_id)
        stored = editions.get_edition(conn, edition_id)
    if state is None or stored is None:
        raise DeliveryError(f"no edition {edition_id!r}: see 'digest editions'")
    if stored.kind != Kind.WEEKLY:
        raise DeliveryError(f"{edition_id} is an alert: write a new one instead")
    if state not in EDITABLE:
        raise DeliveryError(
            f"{edition_id} is {state.label}: an edition that has started to go, or went, "
            "or was cancelled, is no longer changed"
        )
    return state


def contents(app: App, edition_id: str) -> Contents:
    """Every item the week has, in the order and with the choices the edition uses."""
    settings = app.settings
    plan = plan_edition(settings, app.engine, edition_id, app.clock())
    with app.engine.connect() as conn:
        found = content.items_for_edition(
            conn,
            window_start=plan.window_start,
            cutoff=plan.cutoff,
            previous_cutoff=plan.previous_cutoff,
        )
        chosen = choices.choices_of(conn, edition_id)
    shown = {i.key: i for i in apply_choices(found, chosen)}
    sections = [EDITOR_NOTE, *(s for s in settings.edition.sections if s != EVENTS_SECTION)]
    out = []
    for key in sections:
        mine = [i for i in found if _section_of(i) == key]
        kept = sorted(
            (shown[i.key] for i in mine if i.key in shown), key=lambda i: item_order(i, chosen)
        )
        cap = 1 if key == EDITOR_NOTE else settings.edition.cap_for(key)
        originals = {i.key: i for i in mine}
        for n, item in enumerate(kept):
            edited = (
                item.title != originals[item.key].title
                or item.summary != originals[item.key].summary
            )
            out.append(Candidate(item, originals[item.key], key, False, n < cap, edited))
        out += [Candidate(i, i, key, True, False, False) for i in mine if i.key not in shown]
    whole = chosen.get(WHOLE)
    return Contents(out, whole.title if whole else None, whole.summary if whole else None)


def _section_of(item: Item) -> str:
    return EDITOR_NOTE if item.kind == ItemKind.EDITOR_NOTE else item.section


Values = dict[str, dict[str, Any]]  # the choices to set, by item key


def choose(app: App, edition_id: str, item_key: str, action: str, *, who: str, **given: str) -> str:
    """One choice about one item (``leave_out``, ``put_back``, ``up``, ``down``, ``pin``,
    ``unpin``, ``edit`` with ``title`` and ``summary``); the edition is rebuilt. What was
    done, in words (also the audit log's)."""
    editable(app, edition_id)
    listing = contents(app, edition_id)
    found = next((c for c in listing.candidates if c.item.key == item_key), None)
    if found is None:
        raise DeliveryError("that item is not in this week's edition any more: reload the page")
    values, said = _values(listing, found, action, given)
    return _keep(app, edition_id, values, said, who=who)


def set_subject(app: App, edition_id: str, *, subject: str, preheader: str, who: str) -> str:
    """This edition's subject line and preheader (empty: the usual ones)."""
    editable(app, edition_id)
    value = {
        "title": " ".join(subject.split())[:MAX_TITLE] or None,
        "summary": " ".join(preheader.split())[:MAX_TITLE] or None,
    }
    return _keep(app, edition_id, {WHOLE: value}, "set the subject and preheader", who=who)


def _keep(app: App, edition_id: str, values: Values, said: str, *, who: str) -> str:
    """Store the choices, say so in the audit log, and rebuild the edition with them."""
    now = app.clock()
    with app.engine.begin() as conn:
        for key, value in values.items():
            choices.set_choice(conn, edition_id, key, who=who, now=now, **value)
        audit.record(
            conn, who=who, action="edition changed", target=edition_id, detail=said, now=now
        )
    rebuild(app, edition_id, who=who)
    return said


def _values(
    listing: Contents, found: Candidate, action: str, given: dict[str, str]
) -> tuple[Values, str]:
    title = found.original.title
    if action in ("leave_out", "put_back"):
        left = action == "leave_out"
        said = f"{'left out' if left else 'put back'} “{title}”"
        return {found.item.key: {"left_out": left}}, said
    if action in ("pin", "unpin"):
        return {found.item.key: {"pinned": action == "pin"}}, f"{action}ned “{title}”"
    if action == "edit":
        new_title = " ".join(given.get("title", "").split())[:MAX_TITLE]
        summary = " ".join(given.get("summary", "").split())[:MAX_SUMMARY]
        value = {
            "title": None if new_title in ("", title) else new_title,
            "summary": None if summary == found.original.summary else summary,
        }
        return {found.item.key: value}, f"rewrote “{title}” for this edition"
    if action in ("up", "down"):
        return _moved(listing, found, -1 if action == "up" else 1)
    raise DeliveryError(f"unknown change {action!r}")


def _moved(listing: Contents, found: Candidate, step: int) -> tuple[Values, str]:
    """Every item of the section gets its place, with this one swapped with its neighbour."""
    same = [c for c in listing.candidates if c.section == found.section and not c.left_out]
    order = [c.item.key for c in same]
    at = order.index(found.item.key)
    if 0 <= at + step < len(order):
        order[at], order[at + step] = order[at + step], order[at]
    said = f"moved “{found.original.title}” {'up' if step < 0 else 'down'}"
    return {key: {"position": n} for n, key in enumerate(order)}, said


def rebuild(app: App, edition_id: str, *, who: str) -> BuildResult:
    """Build the week again from what is collected now, every choice kept."""
    editable(app, edition_id)
    return build(
        app.settings,
        app.engine,
        week=edition_id,
        out=None,
        force=True,
        now=app.clock(),
        who=who,
    )


def collect_now(app: App) -> CollectReport:
    """Fetch every source once, as the daily job does."""
    return collect(app.settings, app.engine, app.clock())
