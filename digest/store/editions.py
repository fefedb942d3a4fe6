"""Named queries for built editions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from digest.models import Attachment, Edition, RenderedEmail
from digest.store.tables import edition_events, edition_files, editions, job_locks

# A section variant's files are stored beside the edition's as sections/<choice>/<name>
# (choice: the sorted section keys joined by "+", see dispatch/variants.py).
VARIANTS = "sections/"
VARIANT_HTML = "email.html"
VARIANT_TEXT = "email.txt"
VARIANT_SUBJECT = "subject.txt"


@dataclass(frozen=True, slots=True)
class StoredEdition:
    id: str
    subject: str
    built_at: datetime
    item_count: int
    email: RenderedEmail
    cutoff: datetime
    kind: str
    state: str
    list_slug: str | None = None  # an alert's one list (None: every list of its kind)
    send_at: datetime | None = None  # a scheduled alert's time


def previous_cutoff(conn: Connection, edition_id: str, kind: str) -> datetime | None:
    """The cutoff of the latest edition of ``kind`` before ``edition_id``."""
    return conn.execute(
        sa.select(sa.func.max(editions.c.cutoff)).where(
            editions.c.id < edition_id, editions.c.kind == kind
        )
    ).scalar()


def save_edition(
    conn: Connection,
    edition: Edition,
    email: RenderedEmail,
    built_at: datetime,
    *,
    kind: str,
    list_slug: str | None = None,
    send_at: datetime | None = None,
) -> None:
    """Store (or replace) an edition with its rendered email. Its state is not touched."""
    values = {
        "kind": kind,
        "list_slug": list_slug,
        "send_at": send_at,
        "subject": email.subject,
        "since": edition.since,
        "cutoff": edition.cutoff,
        "built_at": built_at,
        "item_count": edition.item_count,
        "edition_json": json.dumps(edition.to_json(), ensure_ascii=False),
        "html": email.html,
        "text": email.text,
    }
    updated = conn.execute(sa.update(editions).where(editions.c.id == edition.id).values(**values))
    if updated.rowcount == 0:
        conn.execute(sa.insert(editions).values(id=edition.id, **values))


def get_edition(
    conn: Connection, edition_id: str | None, *, latest_of: str = ""
) -> StoredEdition | None:
    """One stored edition (or alert) by id, or the most recently built one of ``latest_of``."""
    query = sa.select(editions)
    if edition_id is None:
        query = (
            query.where(editions.c.kind == latest_of).order_by(editions.c.built_at.desc()).limit(1)
        )
    else:
        query = query.where(editions.c.id == edition_id)
    row = conn.execute(query).first()
    if row is None:
        return None
    m = row._mapping
    return StoredEdition(
        m["id"],
        m["subject"],
        m["built_at"],
        m["item_count"],
        RenderedEmail(m["subject"], m["html"], m["text"]),
        m["cutoff"],
        m["kind"],
        m["state"],
        m["list_slug"],
        m["send_at"],
    )


def latest_state(conn: Connection, kind: str) -> tuple[str, str] | None:
    """The id and state of the most recently built edition of ``kind`` (what get_edition's
    ``latest_of`` finds), without its HTML and text: for /healthz, asked every few seconds."""
    query = (
        sa.select(editions.c.id, editions.c.state)
        .where(editions.c.kind == kind)
        .order_by(editions.c.built_at.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else (row[0], row[1])


def save_files(conn: Connection, edition_id: str, files: list[Attachment]) -> None:
    """Replace the edition's stored files (the print edition of every profile, and the
    section variants' renderings named by :func:`variant_file`)."""
    conn.execute(sa.delete(edition_files).where(edition_files.c.edition_id == edition_id))
    if files:
        conn.execute(
            sa.insert(edition_files),
            [
                {
                    "edition_id": edition_id,
                    "name": f.filename,
                    "content_type": f.content_type,
                    "data": f.data,
                }
                for f in files
            ],
        )


def get_files(conn: Connection, edition_id: str) -> list[Attachment]:
    """The whole edition's files (the section variants' apart: :func:`variant_files`)."""
    query = (
        sa.select(edition_files)
        .where(
            edition_files.c.edition_id == edition_id,
            sa.not_(edition_files.c.name.startswith(VARIANTS, autoescape=True)),
        )
        .order_by(edition_files.c.name)
    )
    return [Attachment(r.name, r.content_type, bytes(r.data)) for r in conn.execute(query)]


def variant_file(token: str, file: Attachment) -> Attachment:
    """One file of the section variant ``token`` (``events+news``), named for storing."""
    return Attachment(f"{VARIANTS}{token}/{file.filename}", file.content_type, file.data)


def _variants_of(edition_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        edition_files.c.edition_id == edition_id,
        edition_files.c.name.startswith(VARIANTS, autoescape=True),
    )


def variant_file_names(conn: Connection, edition_id: str) -> list[tuple[str, str]]:
    """(choice token, file name) of every stored section-variant file, without the data."""
    query = sa.select(edition_files.c.name).where(_variants_of(edition_id))
    names = conn.execute(query.order_by(edition_files.c.name)).scalars()
    return [_split(name) for name in names]


def variant_files(conn: Connection, edition_id: str) -> dict[str, list[Attachment]]:
    """Each section variant's files (``email.html``, ``email.txt``, ``subject.txt``, the
    print files), by choice token, named as in the whole edition."""
    query = sa.select(edition_files).where(_variants_of(edition_id))
    found: dict[str, list[Attachment]] = {}
    for r in conn.execute(query.order_by(edition_files.c.name)):
        token, name = _split(r.name)
        found.setdefault(token, []).append(Attachment(name, r.content_type, bytes(r.data)))
    return found


def _split(stored: str) -> tuple[str, str]:
    token, _, name = stored[len(VARIANTS) :].partition("/")
    return token, name


def lock_row(conn: Connection, edition_id: str) -> None:
    """Hold the edition's row until the transaction ends, before its state is read: a no-op
    UPDATE takes the row lock on PostgreSQL and the write lock on SQLite."""
    conn.execute(sa.update(editions).where(editions.c.id == edition_id).values(id=editions.c.id))


def hold_all(conn: Connection) -> None:
    """Hold every edition's row until the transaction ends, as :func:`lock_row` holds one:
    this waits for any plan running (it holds its edition's until it commits), and a plan
    starting meanwhile waits for this transaction."""
    conn.execute(sa.update(editions).values(id=editions.c.id))


def record_state(
    conn: Connection, edition_id: str, state: str, *, who: str, now: datetime, note: str = ""
) -> None:
    """Store a state change (also of a week that got no edition), with who. Only the
    lifecycle's ``transition`` calls this: it checks the move first."""
    conn.execute(sa.update(editions).where(editions.c.id == edition_id).values(state=state))
    conn.execute(
        sa.insert(edition_events).values(
            edition_id=edition_id, state=state, who=who, at=now, note=note
        )
    )


def record_note(conn: Connection, edition_id: str, *, who: str, now: datetime, note: str) -> None:
    """Something that happened to an edition without changing its state (an override of
    its checks), kept in its history beside the state changes."""
    state = state_of(conn, edition_id)
    conn.execute(
        sa.insert(edition_events).values(
            edition_id=edition_id, state=state or "", who=who, at=now, note=note
        )
    )


def edition_of(conn: Connection, edition_id: str) -> Edition | None:
    """The stored edition's contents (what it was built from), or None."""
    data = conn.execute(
        sa.select(editions.c.edition_json).where(editions.c.id == edition_id)
    ).scalar()
    return None if data is None else Edition.from_json(json.loads(data))


def state_of(conn: Connection, edition_id: str) -> str | None:
    return conn.execute(sa.select(editions.c.state).where(editions.c.id == edition_id)).scalar()


def history(conn: Connection, edition_id: str | None = None) -> list[Row[Any]]:
    """State changes, newest first (of one edition, or of all)."""
    query = sa.select(edition_events).order_by(
        edition_events.c.at.desc(), edition_events.c.id.desc()
    )
    if edition_id is not None:
        query = query.where(edition_events.c.edition_id == edition_id)
    return list(conn.execute(query))


def listing(conn: Connection) -> list[Row[Any]]:
    """Every edition and alert with its state, newest first."""
    query = sa.select(
        editions.c.id,
        editions.c.subject,
        editions.c.state,
        editions.c.kind,
        editions.c.send_at,
        editions.c.built_at,
        editions.c.item_count,
    ).order_by(editions.c.built_at.desc())
    return list(conn.execute(query))


def ids_in_state(conn: Connection, states: list[str]) -> list[str]:
    """Editions now in one of ``states``, oldest built first."""
    query = (
        sa.select(editions.c.id).where(editions.c.state.in_(states)).order_by(editions.c.built_at)
    )
    return list(conn.execute(query).scalars())


def in_state_since(conn: Connection, state: str) -> list[tuple[str, datetime]]:
    """Editions now in ``state``, with when they entered it."""
    query = (
        sa.select(editions.c.id, sa.func.max(edition_events.c.at))
        .join(edition_events, edition_events.c.edition_id == editions.c.id)
        .where(editions.c.state == state, edition_events.c.state == state)
        .group_by(editions.c.id)
    )
    return [(row[0], row[1]) for row in conn.execute(query)]


def due_at(conn: Connection, state: str, now: datetime) -> list[tuple[str, datetime]]:
    """Editions in ``state`` whose ``send_at`` has come, with it, earliest first."""
    query = (
        sa.select(editions.c.id, editions.c.send_at)
        .where(editions.c.state == state, editions.c.send_at <= now)
        .order_by(editions.c.send_at)
    )
    return [(row[0], row[1]) for row in conn.execute(query)]


def latest_events(conn: Connection, state: str, limit: int) -> list[Row[Any]]:
    """The newest state changes to ``state`` (a dashboard's failures), newest first."""
    query = (
        sa.select(edition_events)
        .where(edition_events.c.state == state)
        .order_by(edition_events.c.at.desc(), edition_events.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))


def take_lock(conn: Connection, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
    """Hold a named lock until ``until`` (or until released). False when someone else has it."""
    taken = conn.execute(
        sa.update(job_locks)
        .where(
            job_locks.c.name == name, sa.or_(job_locks.c.until < now, job_locks.c.holder == holder)
        )
        .values(holder=holder, until=until)
    ).rowcount
    if taken:
        return True
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(job_locks).values(name=name, holder=holder, until=until))
    except sa.exc.IntegrityError:
        return False
    return True
