"""Named queries for the checks before a send: verdicts, overrides and the link cache."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.tables import check_overrides, edition_checks, link_checks


@dataclass(frozen=True, slots=True)
class StoredCheck:
    name: str
    verdict: str  # ok, warn, block, skipped
    summary: str
    details: Any  # what the check found, as it stored it (JSON)
    content_hash: str
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class Override:
    who: str
    reason: str
    at: datetime
    content_hash: str


@dataclass(frozen=True, slots=True)
class CachedLink:
    url: str
    outcome: str  # ok, redirected, broken, unreachable
    status: int | None
    final_url: str
    detail: str
    checked_at: datetime


def save_check(conn: Connection, edition_id: str, check: StoredCheck) -> None:
    """Store (or replace) one check's verdict on an edition."""
    key = (edition_checks.c.edition_id == edition_id) & (edition_checks.c.name == check.name)
    conn.execute(sa.delete(edition_checks).where(key))
    conn.execute(
        sa.insert(edition_checks).values(
            edition_id=edition_id,
            name=check.name,
            verdict=check.verdict,
            summary=check.summary,
            details=json.dumps(check.details, ensure_ascii=False),
            content_hash=check.content_hash,
            checked_at=check.checked_at,
        )
    )


def checks_of(conn: Connection, edition_id: str) -> list[StoredCheck]:
    rows = conn.execute(
        sa.select(edition_checks)
        .where(edition_checks.c.edition_id == edition_id)
        .order_by(edition_checks.c.name)
    )
    return [
        StoredCheck(
            r.name, r.verdict, r.summary, json.loads(r.details), r.content_hash, r.checked_at
        )
        for r in rows
    ]


def add_override(conn: Connection, edition_id: str, override: Override) -> None:
    conn.execute(
        sa.insert(check_overrides).values(
            edition_id=edition_id,
            content_hash=override.content_hash,
            who=override.who,
            reason=override.reason,
            at=override.at,
        )
    )


def overrides_of(conn: Connection, edition_id: str) -> list[Override]:
    """Every override given for the edition, the latest first."""
    rows = conn.execute(
        sa.select(check_overrides)
        .where(check_overrides.c.edition_id == edition_id)
        .order_by(check_overrides.c.at.desc(), check_overrides.c.id.desc())
    )
    return [Override(r.who, r.reason, r.at, r.content_hash) for r in rows]


def cached_links(conn: Connection, urls: Iterable[str], since: datetime) -> dict[str, CachedLink]:
    """The links among ``urls`` checked at or after ``since``, by URL."""
    wanted = sorted(set(urls))
    found: dict[str, CachedLink] = {}
    for start in range(0, len(wanted), 500):  # within every database's parameter limit
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            sa.select(link_checks).where(
                link_checks.c.url.in_(chunk), link_checks.c.checked_at >= since
            )
        )
        for r in rows:
            found[r.url] = CachedLink(
                r.url, r.outcome, r.status, r.final_url, r.detail, r.checked_at
            )
    return found


def remember_links(conn: Connection, links: Iterable[CachedLink]) -> None:
    """Store (or replace) each link's latest result."""
    rows = list(links)
    urls = [x.url for x in rows]
    for start in range(0, len(urls), 500):
        conn.execute(sa.delete(link_checks).where(link_checks.c.url.in_(urls[start : start + 500])))
    if rows:
        conn.execute(
            sa.insert(link_checks),
            [
                {
                    "url": x.url,
                    "outcome": x.outcome,
                    "status": x.status,
                    "final_url": x.final_url,
                    "detail": x.detail,
                    "checked_at": x.checked_at,
                }
                for x in rows
            ],
        )


def ids_with_verdict(conn: Connection, verdict: str) -> list[str]:
    """The editions with at least one check of that verdict."""
    rows = conn.execute(
        sa.select(edition_checks.c.edition_id).where(edition_checks.c.verdict == verdict).distinct()
    )
    return [r.edition_id for r in rows]
