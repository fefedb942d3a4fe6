"""Named queries for collected content: items, event occurrences and fetch state."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.collect.urls import similar_titles, title_key, url_key
from digest.models import Event, Item, ItemKind
from digest.store.tables import events, fetch_state, items

SAME_STORY_DAYS = 3


@dataclass(frozen=True, slots=True)
class FetchState:
    etag: str | None
    last_modified: str | None


def get_fetch_state(conn: Connection, source_key: str, url: str) -> FetchState:
    """Validators from the last successful fetch of this source at this URL."""
    row = conn.execute(
        sa.select(fetch_state.c.etag, fetch_state.c.last_modified, fetch_state.c.url).where(
            fetch_state.c.source_key == source_key
        )
    ).first()
    if row is None or row.url != url:
        return FetchState(None, None)
    return FetchState(row.etag, row.last_modified)


def record_fetch(
    conn: Connection,
    source_key: str,
    url: str,
    *,
    now: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    error: str | None = None,
) -> None:
    """Remember how a fetch went; validators only change when it worked."""
    values: dict[str, object] = {"url": url, "last_checked": now, "last_error": error}
    if error is None:
        values |= {"etag": etag, "last_modified": last_modified, "last_ok": now}
    updated = conn.execute(
        sa.update(fetch_state).where(fetch_state.c.source_key == source_key).values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(sa.insert(fetch_state).values(source_key=source_key, **values))


def store_items(conn: Connection, new: Iterable[Item]) -> tuple[int, int]:
    """Insert items not seen before; merge duplicates of a stored story. Returns (added, merged)."""
    added = merged = 0
    for item in new:
        if conn.execute(sa.select(items.c.key).where(items.c.key == item.key)).first():
            continue
        if _same_story_stored(conn, item):
            merged += 1
            continue
        conn.execute(sa.insert(items).values(**_row(item)))
        added += 1
    return added, merged


# What a feed may correct in an item it sent before: what readers see of it.
_CORRECTABLE = ("title", "title_key", "summary", "body_html", "author", "outlet")


def content_hash(title: str, summary: str, body_html: str, author: str, outlet: str) -> str:
    """What readers see of an item, as one digest: it changes when any of it does."""
    joined = "\0".join((title, summary, body_html, author, outlet))
    return hashlib.sha256(joined.encode()).hexdigest()


def update_items(conn: Connection, fetched: Iterable[Item]) -> int:
    """Feeds correct their stories: a stored item whose text changed takes the feed's new
    title, summary, body, author and outlet (its dates, link and section stay). Returns
    how many changed."""
    fresh = {item.key: item for item in fetched}
    if not fresh:
        return 0
    columns = [items.c.key, items.c.source]
    columns += [items.c[name] for name in _CORRECTABLE if name != "title_key"]
    stored = conn.execute(sa.select(*columns).where(items.c.key.in_(fresh)))
    updated = 0
    for row in stored:
        item = fresh[row.key]
        if row.source != item.source:  # a link two feeds share: the first feed's story
            continue
        new = content_hash(item.title, item.summary, item.body_html, item.author, item.outlet)
        if new == content_hash(row.title, row.summary, row.body_html, row.author, row.outlet):
            continue
        values = {name: value for name, value in _row(item).items() if name in _CORRECTABLE}
        conn.execute(sa.update(items).where(items.c.key == item.key).values(**values))
        updated += 1
    return updated


# What staff may change in a note after it was first collected.
_NOTE_FIELDS = (
    "title",
    "title_key",
    "summary",
    "body_html",
    "section",
    "pinned",
    "kind",
    "published",
    "author",
)


def update_note(conn: Connection, note: Item) -> bool:
    """Staff edit notes in place: keep the stored copy in step. True when something changed."""
    values = {name: value for name, value in _row(note).items() if name in _NOTE_FIELDS}
    changed = sa.or_(*(items.c[name] != value for name, value in values.items()))
    result = conn.execute(
        sa.update(items).where(items.c.key == note.key).where(changed).values(**values)
    )
    return result.rowcount > 0


def _row(item: Item) -> dict[str, object]:
    return {
        "key": item.key,
        "source": item.source,
        "section": item.section,
        "kind": item.kind.value,
        "title": item.title,
        "title_key": title_key(item.title),
        "url": item.url,
        "url_key": url_key(item.url) if item.url else None,
        "summary": item.summary,
        "body_html": item.body_html,
        "author": item.author,
        "outlet": item.outlet,
        "pinned": item.pinned,
        "published": item.published,
        "first_seen": item.first_seen,
    }


def remove_notes_except(conn: Connection, keys: frozenset[str]) -> int:
    """Forget stored notes whose file is gone. Returns how many."""
    result = conn.execute(
        sa.delete(items).where(items.c.source == "notes", items.c.key.not_in(keys))
    )
    return result.rowcount


def _same_story_stored(conn: Connection, item: Item) -> bool:
    if (
        item.url
        and conn.execute(
            sa.select(items.c.key).where(items.c.url_key == url_key(item.url)).limit(1)
        ).first()
    ):
        return True
    key = title_key(item.title)
    near = sa.select(items.c.title_key).where(
        items.c.published.between(
            item.published - timedelta(days=SAME_STORY_DAYS),
            item.published + timedelta(days=SAME_STORY_DAYS),
        ),
        items.c.kind == ItemKind.ARTICLE.value,
    )
    return item.kind == ItemKind.ARTICLE and any(
        similar_titles(key, row.title_key) for row in conn.execute(near)
    )


def items_for_edition(
    conn: Connection,
    *,
    window_start: datetime,
    cutoff: datetime,
    previous_cutoff: datetime | None,
) -> list[Item]:
    """Items of the window up to ``cutoff`` that the previous edition did not carry.

    New means published after the previous edition's cutoff (and inside the window),
    or published before it but only first seen after it, so a story a feed showed
    late still makes the next edition.
    """
    fresh_after = max(window_start, previous_cutoff) if previous_cutoff else window_start
    fresh = items.c.published > fresh_after
    if previous_cutoff is not None:
        late = sa.and_(
            items.c.first_seen > previous_cutoff,
            items.c.published > previous_cutoff - (cutoff - window_start),
        )
        fresh = sa.or_(fresh, late)
    query = (
        sa.select(items)
        .where(fresh, items.c.published <= cutoff)
        .order_by(items.c.published.desc(), items.c.key)
    )
    return [_item(row) for row in conn.execute(query)]


def _item(row: sa.Row[tuple[object, ...]]) -> Item:
    m = row._mapping
    return Item(
        key=m["key"],
        source=m["source"],
        section=m["section"],
        title=m["title"],
        url=m["url"],
        summary=m["summary"],
        body_html=m["body_html"],
        published=m["published"],
        first_seen=m["first_seen"],
        author=m["author"],
        pinned=bool(m["pinned"]),
        kind=ItemKind(m["kind"]),
        outlet=m["outlet"],
    )


def replace_events(
    conn: Connection, source: str, found: Sequence[Event], *, from_time: datetime, now: datetime
) -> tuple[int, int]:
    """The calendar is the truth: its stored occurrences from ``from_time`` on are replaced.

    Returns (occurrences not stored before, occurrences stored now).
    """
    mine = sa.and_(events.c.source == source, events.c.start >= from_time)
    before = set(conn.execute(sa.select(events.c.key).where(mine)).scalars())
    conn.execute(sa.delete(events).where(mine))
    fresh = {e.key: e for e in found if e.start >= from_time}
    for e in fresh.values():
        conn.execute(
            sa.insert(events).values(
                key=e.key,
                source=e.source,
                title=e.title,
                start=e.start,
                end=e.end,
                all_day=e.all_day,
                location=e.location,
                url=e.url,
                description=e.description,
                description_full=e.description_full,
                collected_at=now,
            )
        )
    return len(fresh.keys() - before), len(fresh)


def events_between(conn: Connection, start: datetime, end: datetime, zone: ZoneInfo) -> list[Event]:
    """Occurrences that have not ended by ``start`` and begin before ``end``, soonest first."""
    query = (
        sa.select(events)
        .where(
            events.c.start < end,
            sa.or_(
                events.c.start >= start, sa.and_(events.c.end.is_not(None), events.c.end > start)
            ),
        )
        .order_by(events.c.start, events.c.title)
    )
    out = []
    for row in conn.execute(query):
        m = row._mapping
        out.append(
            Event(
                key=m["key"],
                source=m["source"],
                title=m["title"],
                start=m["start"].astimezone(zone),
                end=m["end"].astimezone(zone) if m["end"] else None,
                all_day=bool(m["all_day"]),
                location=m["location"],
                url=m["url"],
                description=m["description"],
                description_full=m["description_full"],
            )
        )
    return out


def last_collect(conn: Connection) -> datetime | None:
    """When any source was last fetched (the dashboard shows it)."""
    latest: datetime | None = conn.execute(
        sa.select(sa.func.max(fetch_state.c.last_checked))
    ).scalar()
    return latest


def fetch_states(conn: Connection) -> dict[str, Row[Any]]:
    """Each source's last fetch (its url, last_checked and last_error), by source key."""
    return {r.source_key: r for r in conn.execute(sa.select(fetch_state))}
