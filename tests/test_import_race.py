"""An import and a web sign-up of the same address at the same moment: the sign-up comes
while the import is between reading who is known and adding who is new. Both write the
lists' rows first (``sync_lists``), so the sign-up waits for the import's transaction and
then finds the address known: the import stores everybody, nobody is stored twice, and
the sign-up is recorded. (Without that wait the import failed on the unique key, or on
SQLite's stale snapshot, and stored nothing.)
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digest.audience.importer import import_csv
from digest.audience.signup import request_subscription
from digest.store import audience as store
from digest.store import bulk
from digest.store.tables import memberships, subscribers
from tests.conftest import NOW

ROWS = "email,name\nann@example.org,Ann\nbo@example.org,Bo\ncy@example.org,Cy\n"


def test_an_import_stores_everyone_when_a_signup_of_one_of_them_lands_meanwhile(
    make_project: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)
    project = make_project()
    source = tmp_path / "people.csv"
    source.write_text(ROWS, encoding="utf-8")
    with project.engine().begin() as conn:  # the lists, as any earlier command stored them
        store.sync_lists(conn, project.settings().lists)
    looked_up = bulk.known_for_import
    signups: list[threading.Thread] = []
    failed: list[BaseException] = []

    def sign_up() -> None:
        try:
            request_subscription(
                project.app(at=NOW),
                email="Bo@example.org",
                name="Bo From The Web",
                lists=["weekly"],
                fmt="text",
                profile=None,
                now=NOW,
            )
        except BaseException as exc:  # the test says so below
            failed.append(exc)

    def a_signup_lands_after_the_lookup(conn: Any, list_slug: str, keys: Any) -> Any:
        known = looked_up(conn, list_slug, keys)
        if not signups:  # once: the web form, in its own thread and connection
            signup = threading.Thread(target=sign_up)
            signups.append(signup)
            signup.start()
            signup.join(timeout=3)  # SQLite may make it wait for the import's write lock
        return known

    monkeypatch.setattr(bulk, "known_for_import", a_signup_lands_after_the_lookup)
    report = import_csv(
        project.app(at=NOW),
        source,
        list_slug="weekly",
        default_format=None,
        pending=False,
        dry_run=False,
        now=NOW,
    )
    signups[0].join(timeout=30)
    assert not signups[0].is_alive()
    assert failed == []

    assert report.written
    assert report.added + report.updated + report.unchanged == 3
    with project.engine().connect() as conn:
        stored = conn.execute(
            sa.select(subscribers.c.email_key, sa.func.count())
            .group_by(subscribers.c.email_key)
            .order_by(subscribers.c.email_key)
        ).all()
        on_weekly = conn.execute(
            sa.select(subscribers.c.email_key)
            .join(memberships, memberships.c.subscriber_id == subscribers.c.id)
            .where(memberships.c.list_slug == "weekly")
            .order_by(subscribers.c.email_key)
        ).scalars()
        assert list(on_weekly) == ["ann@example.org", "bo@example.org", "cy@example.org"]
    assert stored == [("ann@example.org", 1), ("bo@example.org", 1), ("cy@example.org", 1)]
