"""Named queries for subscribers, lists, memberships and suppressions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.chunks import batched
from digest.config import ListSettings
from digest.errors import AudienceError
from digest.models import Recipient
from digest.store.sql import column_array, one_of
from digest.store.tables import lists, memberships, subscribers, suppressions

ACTIVE = "active"
PENDING = "pending"
UNSUBSCRIBED = "unsubscribed"
# Someone erased on request: the row stays, blank, only while the send ledger points at it.
FORGOTTEN = "forgotten"
GONE = frozenset({"unsubscribed", "bounced", "complained", FORGOTTEN})  # never mailed again
MEMBER_STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED)  # a membership's; bounced etc. are a person's
CHUNK = 500  # keys per IN (...) query
FORGOTTEN_MARK = "forgotten:"  # how a forgotten address's suppression key begins

Marks = Callable[[str], Sequence[str]]
"""An address key's forgotten marks (``Keyring.forgotten``): the suppression keys a
forgotten address leaves instead of itself."""


def no_marks(email_key: str) -> Sequence[str]:
    """Marks where no signing key is set: nobody can have been forgotten with it."""
    return ()


def sync_lists(conn: Connection, configured: Iterable[ListSettings]) -> None:
    """Make the lists table match config.toml's [[lists]] (lists are never deleted here)."""
    for item in configured:
        values = {"name": item.name, "kind": item.kind, "description": item.description}
        updated = conn.execute(sa.update(lists).where(lists.c.slug == item.slug).values(**values))
        if updated.rowcount == 0:
            conn.execute(sa.insert(lists).values(slug=item.slug, **values))


def find_subscriber(conn: Connection, email_key: str) -> Row[Any] | None:
    return conn.execute(sa.select(subscribers).where(subscribers.c.email_key == email_key)).first()


def subscriber_by_id(conn: Connection, subscriber_id: int) -> Row[Any] | None:
    return conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).first()


def _by_email_key(conn: Connection, table: sa.Table, keys: Sequence[str]) -> dict[str, Row[Any]]:
    """Rows of ``table`` for many email keys, a few hundred keys per query."""
    found: dict[str, Row[Any]] = {}
    for part in batched(keys, CHUNK):
        query = sa.select(table).where(one_of(conn, table.c.email_key, part))
        found.update((row.email_key, row) for row in conn.execute(query))
    return found


def subscribers_by_key(conn: Connection, keys: Sequence[str]) -> dict[str, Row[Any]]:
    """Stored subscribers for many email keys at once."""
    return _by_email_key(conn, subscribers, keys)


def add_subscribers(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert many subscribers (dicts of column values) at once; their ids by email key."""
    if not rows:
        return {}
    returning = (subscribers.c.id, subscribers.c.email_key)
    if conn.dialect.name == "postgresql":
        # One statement with an array per column: no multi-row VALUES text to build and parse.
        columns = list(rows[0])
        arrays = sa.select(
            *(sa.func.unnest(column_array(subscribers.c[c], [r[c] for r in rows])) for c in columns)
        )
        query = sa.insert(subscribers).from_select(columns, arrays).returning(*returning)
        return {key: sid for sid, key in conn.execute(query)}
    query = sa.insert(subscribers).returning(*returning)
    return {key: sid for sid, key in conn.execute(query, list(rows))}


def refresh_statistics(conn: Connection) -> None:
    """After a bulk load, tell PostgreSQL's planner the tables grew.

    Otherwise, inside the loading transaction it still believes them nearly empty and
    scans them whole for every look-up (an import of 100,000 rows took minutes).
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE subscribers, memberships")


def update_subscriber(conn: Connection, subscriber_id: int, **values: Any) -> None:
    conn.execute(sa.update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))


def memberships_of(conn: Connection, subscriber_id: int) -> list[Row[Any]]:
    query = (
        sa.select(memberships)
        .where(memberships.c.subscriber_id == subscriber_id)
        .order_by(memberships.c.list_slug)
    )
    return list(conn.execute(query))


def list_memberships(conn: Connection, list_slug: str, ids: Sequence[int]) -> dict[int, Row[Any]]:
    """The memberships of one list for many subscribers at once."""
    found: dict[int, Row[Any]] = {}
    for part in batched(ids, CHUNK):
        query = sa.select(memberships).where(
            memberships.c.list_slug == list_slug,
            one_of(conn, memberships.c.subscriber_id, part),
        )
        found.update((row.subscriber_id, row) for row in conn.execute(query))
    return found


def add_membership(
    conn: Connection,
    subscriber_id: int,
    list_slug: str,
    *,
    status: str,
    fmt: str,
    profile: str | None,
    now: datetime,
) -> None:
    """One person onto one list."""
    row = {"subscriber_id": subscriber_id, "list_slug": list_slug, "status": status}
    add_memberships(conn, [{**row, "format": fmt, "profile": profile, "created": now}])


def add_memberships(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many memberships (the same columns in each) in bulk statements. Every list
    they name must be in the lists table: this is the one check of it (no foreign key does
    it, migration 0020), so every membership is written through here."""
    from digest.store import bulk  # it imports this module's Marks

    named = {row["list_slug"] for row in rows}
    known = set(conn.execute(sa.select(lists.c.slug).where(lists.c.slug.in_(named))).scalars())
    if unknown := sorted(named - known):
        raise AudienceError(
            f"no list {unknown[0]!r} in the database: add it to config.toml's [[lists]]"
        )
    bulk.add_memberships(conn, rows)


def update_membership(conn: Connection, subscriber_id: int, list_slug: str, **values: Any) -> bool:
    result = conn.execute(
        sa.update(memberships)
        .where(memberships.c.subscriber_id == subscriber_id, memberships.c.list_slug == list_slug)
        .values(**values)
    )
    return result.rowcount > 0


def suppression_of(conn: Connection, email_key: str, marks: Marks) -> Row[Any] | None:
    """What stops mail to this address, or None: the one place that decides "suppressed".
    The mark they left when they asked to be forgotten (reason ``forgotten``) comes first,
    then the address's own suppression."""
    return suppressions_by_key(conn, [email_key], marks).get(email_key)


def suppressions_by_key(conn: Connection, keys: Sequence[str], marks: Marks) -> dict[str, Row[Any]]:
    """What stops mail to each of many address keys (see ``suppression_of``), by key."""
    found = _by_email_key(conn, suppressions, keys)
    by_mark = {mark: key for key in keys for mark in marks(key)}
    for mark, row in _by_email_key(conn, suppressions, list(by_mark)).items():
        found[by_mark[mark]] = row
    return found


def any_forgotten(conn: Connection) -> bool:
    """Whether anyone was forgotten (then only the signing key recognises them)."""
    query = sa.select(suppressions.c.email_key).where(
        suppressions.c.email_key.startswith(FORGOTTEN_MARK, autoescape=True)
    )
    return conn.execute(query.limit(1)).first() is not None


def suppress(
    conn: Connection, email: str, email_key: str, *, reason: str, origin: str, now: datetime
) -> bool:
    """Never mail this address (or forgotten mark) again. True when it was not suppressed
    before under this key."""
    if _by_email_key(conn, suppressions, [email_key]):
        return False
    conn.execute(
        sa.insert(suppressions).values(
            email_key=email_key, email=email, reason=reason, origin=origin, created=now
        )
    )
    return True


def lift_suppression(conn: Connection, email_key: str, marks: Marks) -> bool:
    """The address's suppression and its forgotten marks gone: they asked to come back."""
    doomed = [email_key, *marks(email_key)]
    query = sa.delete(suppressions).where(suppressions.c.email_key.in_(doomed))
    return conn.execute(query).rowcount > 0


def first_members(list_slugs: list[str]) -> sa.Subquery:
    """The one rule for who a send reaches: active members of any of the lists, never
    suppressed, each once, by the membership of their first list (by slug). Columns:
    subscriber_id, email, name, format, list_slug, profile, timezone, sections."""
    earlier = memberships.alias("earlier")
    on_an_earlier_list = sa.exists().where(
        earlier.c.subscriber_id == memberships.c.subscriber_id,
        earlier.c.list_slug.in_(list_slugs),
        earlier.c.status == ACTIVE,
        earlier.c.list_slug < memberships.c.list_slug,
    )
    return (
        sa.select(
            subscribers.c.id.label("subscriber_id"),
            subscribers.c.email,
            subscribers.c.name,
            memberships.c.format,
            memberships.c.list_slug,
            memberships.c.profile,
            subscribers.c.timezone,
            memberships.c.sections,
        )
        .join(memberships, memberships.c.subscriber_id == subscribers.c.id)
        .outerjoin(suppressions, suppressions.c.email_key == subscribers.c.email_key)
        .where(
            memberships.c.list_slug.in_(list_slugs),
            memberships.c.status == ACTIVE,
            subscribers.c.status == ACTIVE,
            suppressions.c.email_key.is_(None),
            *([~on_an_earlier_list] if len(set(list_slugs)) > 1 else []),  # else none earlier
        )
        .subquery("members")
    )


def recipients_for(conn: Connection, list_slugs: list[str]) -> Iterator[Recipient]:
    """Everyone :func:`first_members` names, by subscriber id, streamed."""
    members = first_members(list_slugs)
    query = sa.select(members).order_by(members.c.subscriber_id)
    for row in conn.execute(query.execution_options(yield_per=1000)):
        yield Recipient(
            row.subscriber_id,
            row.email,
            row.name,
            row.format,
            (row.list_slug,),
            row.profile,
            row.timezone,
            chosen_sections(row.sections),
        )


def chosen_sections(stored: str | None) -> tuple[str, ...] | None:
    """A membership's ``sections`` column as the sections chosen (None: every section)."""
    if stored is None:
        return None
    return tuple(part for part in stored.split(",") if part)


def stored_sections(chosen: Iterable[str] | None) -> str | None:
    """The ``sections`` column for a choice (None: every section), keys sorted."""
    return None if chosen is None else ",".join(sorted(set(chosen)))


def set_sections(
    conn: Connection, subscriber_id: int, chosen: Iterable[str] | None, *, now: datetime
) -> bool:
    """The sections a reader wants, on each of their memberships (None: every section).
    True when anything changed."""
    value = stored_sections(chosen)
    query = (
        sa.update(memberships)
        .where(
            memberships.c.subscriber_id == subscriber_id,
            sa.or_(memberships.c.sections.is_(None), memberships.c.sections != value)
            if value is not None
            else memberships.c.sections.is_not(None),
        )
        .values(sections=value, changed=now)
    )
    return conn.execute(query).rowcount > 0


def member_count(conn: Connection, list_slugs: Sequence[str]) -> int:
    """The active memberships of these lists, one count(*): how big a send will be, to
    choose its worker processes while it plans. A person on two of them counts twice, and
    the suppressed and gone are in it: near enough for that, and a tenth of
    :func:`list_counts`'s time (who a send reaches is :func:`first_members`'s)."""
    query = sa.select(sa.func.count()).select_from(memberships)
    query = query.where(memberships.c.list_slug.in_(list_slugs), memberships.c.status == ACTIVE)
    return int(conn.execute(query).scalar_one())


def list_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Members per list and membership status (suppressed and gone subscribers apart)."""
    effective = sa.case(
        (suppressions.c.email_key.is_not(None), "suppressed"),
        (subscribers.c.status.in_(GONE), subscribers.c.status),
        else_=memberships.c.status,
    )
    query = (
        sa.select(memberships.c.list_slug, effective.label("state"), sa.func.count())
        .join(subscribers, subscribers.c.id == memberships.c.subscriber_id)
        .outerjoin(suppressions, suppressions.c.email_key == subscribers.c.email_key)
        .group_by(memberships.c.list_slug, effective)
    )
    counts: dict[str, dict[str, int]] = {}
    for slug, state, n in conn.execute(query):
        counts.setdefault(slug, {})[state] = n
    return counts


@dataclass(frozen=True, slots=True)
class Filter:
    """Which subscribers a console view or an export shows: a text in the address or
    name, one list, one status (of the subscriber, or of their membership of that list)."""

    text: str = ""
    list_slug: str | None = None
    status: str | None = None


def _filtered(query: sa.Select[Any], wanted: Filter) -> sa.Select[Any]:
    words = wanted.text.strip()
    if words:
        escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped.casefold()}%"
        query = query.where(
            sa.or_(
                subscribers.c.email_key.like(pattern, escape="\\"),
                sa.func.lower(subscribers.c.name).like(pattern, escape="\\"),
            )
        )
    if wanted.list_slug is not None:
        member = [
            memberships.c.subscriber_id == subscribers.c.id,
            memberships.c.list_slug == wanted.list_slug,
        ]
        if wanted.status in MEMBER_STATUSES:  # their state on that list
            member.append(memberships.c.status == wanted.status)
        query = query.where(sa.exists().where(*member))
    if wanted.status is not None and not (
        wanted.list_slug is not None and wanted.status in MEMBER_STATUSES
    ):
        query = query.where(subscribers.c.status == wanted.status)
    elif wanted.status is None:  # the blank rows of the forgotten are nobody to show
        query = query.where(subscribers.c.status != FORGOTTEN)
    return query


def find_subscribers(
    conn: Connection, wanted: Filter, *, before_id: int | None = None, limit: int = 50
) -> list[Row[Any]]:
    """One page of the subscribers ``wanted`` picks, newest first: those with an id below
    ``before_id`` (keyset paging: page 1,000 costs what page 1 does)."""
    query = sa.select(subscribers).order_by(subscribers.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(subscribers.c.id < before_id)
    return list(conn.execute(_filtered(query, wanted)))


def export_rows(conn: Connection, wanted: Filter) -> Iterator[Row[Any]]:
    """The subscribers ``wanted`` picks, by id, streamed: the columns an export writes."""
    format_of = (
        sa.select(memberships.c.format)
        .where(memberships.c.subscriber_id == subscribers.c.id)
        .order_by(memberships.c.list_slug)
        .limit(1)
    )
    if wanted.list_slug is not None:
        format_of = format_of.where(memberships.c.list_slug == wanted.list_slug)
    c = subscribers.c
    query = _filtered(sa.select(c.id, c.email, c.name, c.status, c.created).order_by(c.id), wanted)
    query = query.add_columns(format_of.scalar_subquery().label("format"))
    yield from conn.execute(query.execution_options(yield_per=1000))


def lists_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
    """Lists each subscriber is on (not unsubscribed from)."""
    found: dict[int, list[str]] = {}
    for part in batched(ids, CHUNK):
        query = (
            sa.select(memberships.c.subscriber_id, memberships.c.list_slug)
            .where(
                one_of(conn, memberships.c.subscriber_id, part),
                memberships.c.status != UNSUBSCRIBED,
            )
            .order_by(memberships.c.list_slug)
        )
        for sid, slug in conn.execute(query):
            found.setdefault(sid, []).append(slug)
    return found
