"""An edition's kinds and states, and the one table of moves between states.

```
            ┌──────────── reject ───────────▶ rejected
            │
built ──▶ awaiting approval ──approve──▶ approved ──▶ sending ──▶ sent
  │                                          ▲            │
  └──────────── send now ────────────────────┘            └──▶ failed (reason) ──retry──▶ sending
scheduled (alert --at) ──time──▶ sending          scheduled / approved ──cancel──▶ cancelled
weekly job: nothing new ──▶ skipped;  server down past the grace ──▶ missed
```

Every state change anywhere goes through :func:`transition`, which refuses a move that
is not in :data:`MOVES`, naming the current state and the moves that are allowed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.engine import Connection

from digest.config import Settings
from digest.errors import DeliveryError
from digest.models import Edition, RenderedEmail
from digest.store import editions, scheduled


class Kind(StrEnum):
    """What an edition is; its audience follows from it."""

    WEEKLY = "weekly"
    ALERT = "alert"
    WELCOME = "welcome"  # one list's welcome email: its ledger holds who has had it


# The kinds of list each kind of edition goes to.
LIST_KINDS: dict[Kind, tuple[str, ...]] = {
    Kind.WEEKLY: ("digest", "print"),
    Kind.ALERT: ("alerts",),
    Kind.WELCOME: ("digest", "print", "alerts"),  # but only ever its own one list
}


def audience_of(settings: Settings, kind: Kind, list_slug: str | None) -> list[str]:
    """The named list when its kind fits the edition's, else every list the kind goes to."""
    wanted = LIST_KINDS[kind]
    if kind is Kind.WELCOME and list_slug is None:
        raise DeliveryError("a welcome email goes to its own list only: it was stored without one")
    if list_slug is not None:
        chosen = settings.list_named(list_slug)
        if chosen.kind not in wanted:
            what = "an alert" if kind is Kind.ALERT else "a weekly edition"
            raise DeliveryError(
                f"list {chosen.slug!r} is of kind {chosen.kind!r}: {what} goes only to lists "
                f"of kind {' or '.join(map(repr, wanted))}; leave --list out to reach them all"
            )
        return [chosen.slug]
    slugs = [x.slug for x in settings.lists if x.kind in wanted]
    if not slugs:
        raise DeliveryError(
            f"no list of kind {' or '.join(map(repr, wanted))} in config.toml: add one under "
            "[[lists]]"
        )
    return slugs


class State(StrEnum):
    BUILT = "built"
    AWAITING = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    MISSED = "missed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


# None: a week (or alert) with no edition stored yet.
MOVES: dict[State | None, frozenset[State]] = {
    None: frozenset({State.BUILT, State.SCHEDULED, State.SKIPPED, State.MISSED, State.FAILED}),
    State.BUILT: frozenset(
        {State.AWAITING, State.SENDING, State.REJECTED, State.MISSED, State.FAILED}
    ),
    State.AWAITING: frozenset({State.APPROVED, State.REJECTED, State.FAILED}),
    State.APPROVED: frozenset({State.SENDING, State.CANCELLED, State.FAILED}),
    State.SCHEDULED: frozenset({State.SENDING, State.CANCELLED, State.MISSED, State.FAILED}),
    # Cancelling a sent (or sending) edition stops what of it waits for its delivery time
    # ([schedule] deliver_at_local); with nothing scheduled, it is refused.
    State.SENDING: frozenset({State.SENT, State.FAILED, State.CANCELLED}),
    State.FAILED: frozenset({State.SENDING}),
    # A later send of a sent edition reaches only people who joined since (or another
    # list); the ledger still sends nobody twice.
    State.SENT: frozenset({State.SENDING, State.CANCELLED}),
    # Rebuilt by hand after a no, or after the scheduler missed the week.
    State.REJECTED: frozenset({State.BUILT}),
    State.MISSED: frozenset({State.BUILT, State.SENDING}),
    State.SKIPPED: frozenset({State.BUILT}),
    State.CANCELLED: frozenset(),
}
# Where a send may start from (and sending itself: a resume).
SENDABLE = frozenset(s for s, moves in MOVES.items() if s is not None and State.SENDING in moves)
# A send recorded in the ledger may still have batches to deliver.
UNFINISHED = frozenset({State.APPROVED, State.SENDING})


class TransitionRefused(DeliveryError):
    """A move the table does not allow; the message names what is allowed."""


def state_of(conn: Connection, edition_id: str) -> State | None:
    """The edition's current state, or None when nothing is stored for it."""
    value = editions.state_of(conn, edition_id)
    return None if value is None else State(value)


def locked_state(conn: Connection, edition_id: str) -> State | None:
    """The state, read after taking the edition's row: read it this way before a move
    that depends on it, so two processes never both see the old state."""
    editions.lock_row(conn, edition_id)
    return state_of(conn, edition_id)


def allowed_after(state: State | None) -> list[str]:
    return sorted(s.label for s in MOVES[state])


def transition(
    conn: Connection,
    edition_id: str,
    to: State,
    *,
    who: str,
    now: datetime,
    note: str = "",
) -> State | None:
    """Move an edition to ``to``, recorded with who and why; the state it was in.

    Refuses (and changes nothing) when the move is not in the table. The row is
    locked first, so two processes cannot both make the same move.
    """
    current = locked_state(conn, edition_id)
    _refuse_unless_allowed(edition_id, current, to)
    if to in (State.APPROVED, State.SENDING) and current in CHECKED_BEFORE:
        _refuse_when_held(conn, edition_id)
    if to is State.CANCELLED and current in DELIVERED and not has_schedule(conn, edition_id):
        raise TransitionRefused(
            f"edition {edition_id} is {current.label} and nothing of it waits for a later "
            "delivery time: it cannot be cancelled"
        )
    editions.record_state(conn, edition_id, to.value, who=who, now=now, note=note)
    return current


# Handed to the provider (or being handed): cancelled only through a scheduled send.
DELIVERED = frozenset({State.SENDING, State.SENT})


def has_schedule(conn: Connection, edition_id: str) -> bool:
    """Whether the edition's mail was booked for later delivery (see ``deliveries``)."""
    return scheduled.status_of(conn, edition_id) is not None


class HeldByChecks(DeliveryError):
    """A blocking check, not overridden: the message says which and what to do."""


# A move out of these to approved or sending must pass the checks: the first yes, and a
# retry after a failure (which may have come before anything was checked or sent).
CHECKED_BEFORE = frozenset(
    {State.BUILT, State.AWAITING, State.MISSED, State.SCHEDULED, State.FAILED}
)


def _refuse_when_held(conn: Connection, edition_id: str) -> None:
    from digest.lifecycle.checking import refusal

    if (why := refusal(conn, edition_id)) is not None:
        raise HeldByChecks(why)


def _refuse_unless_allowed(edition_id: str, current: State | None, to: State) -> None:
    if to in MOVES[current]:
        return
    now_in = "has no edition stored" if current is None else f"is {current.label}"
    allowed = ", ".join(allowed_after(current)) or "nothing: it is final"
    raise TransitionRefused(
        f"edition {edition_id} {now_in}: it cannot become {to.label} (from here: "
        f"{allowed}); see 'digest editions'"
    )


# Rebuilding an edition in one of these starts its life again.
REBUILDS = frozenset({State.REJECTED, State.MISSED, State.SKIPPED})
# What staff may still change at the desk: nothing has gone, nor started to.
EDITABLE = frozenset({State.BUILT, State.AWAITING, State.REJECTED, State.MISSED})
# Not to be posted on paper: waiting for staff, turned down or called off.
NOT_FOR_PAPER = frozenset({State.AWAITING, State.REJECTED, State.CANCELLED})


def store_edition(
    conn: Connection,
    edition: Edition,
    email: RenderedEmail,
    *,
    kind: Kind,
    who: str,
    now: datetime,
    to: State = State.BUILT,
    list_slug: str | None = None,
    send_at: datetime | None = None,
    note: str = "",
) -> None:
    """Store a built edition (or alert): a new one starts ``to`` (built, or scheduled); a
    rebuild keeps its state, except that a rejected or missed week is built again."""
    current = state_of(conn, edition.id)
    if current is not None and current not in REBUILDS and to is State.BUILT:
        editions.save_edition(conn, edition, email, now, kind=kind, list_slug=list_slug)
        return
    _refuse_unless_allowed(edition.id, current, to)
    editions.save_edition(
        conn, edition, email, now, kind=kind, list_slug=list_slug, send_at=send_at
    )
    editions.record_state(conn, edition.id, to.value, who=who, now=now, note=note)
