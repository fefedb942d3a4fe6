"""The import's bulk statements (COPY on PostgreSQL, multi-row INSERTs on SQLite, one query
for thousands of keys) leave the database exactly as SQLAlchemy's plain statements do: a
mixed file (new, known, changed, duplicated, suppressed, unsubscribed, forgotten, invalid,
print rows with addresses, values COPY must escape) imported both ways, on both databases,
gives the same rows, ids included, and the same report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digest.audience import importer
from digest.audience.importer import ImportReport, import_csv
from digest.audience.privacy import forget
from digest.config import Secrets
from digest.context import App
from digest.store import audience as store
from digest.store import bulk, open_engine
from digest.store.bulk import Known, Member
from digest.store.tables import mailing_addresses, memberships, subscribers, suppressions
from tests.conftest import NOW, second_database

KEY = "import-paths-test-secret-key-0123456789"
INSIDE = '\n[[lists]]\nslug = "inside"\nname = "Inside"\nkind = "print"\n'
POSTAL = "inmate_id,facility,unit,address1,address2,city,state,zip"
FIRST = f"""email,name,format,timezone,profile,{POSTAL}
kept@example.org,Kept Same,html,,,,,,,,,,
renamed@example.org,Old Name,html,,,,,,,,,,
moved@example.org,Moved,html,America/Chicago,,,,,,,,,
left@example.org,Left List,html,,,,,,,,,,
bounced@example.org,Bounced,html,,,,,,,,,,
zed@example.org,Zed Forgotten,html,,,,,,,,,,
posted@example.org,Posted Once,print,,default,A-1,North Facility,B,1 Road,,Town,NY,10001
"""
# Line by line: what each row of the mixed file is.
MIXED = f"""email,name,format,timezone,profile,{POSTAL}
new.one@example.org,New One,html,,,,,,,,,,
NEW.Two@Example.org,"Back\\slash \\N tab\t""quote"" O'Brien",text,Europe/Paris,,,,,,,,,
kept@example.org,Kept Same,html,,,,,,,,,,
renamed@example.org,New Name,text,,,,,,,,,,
moved@example.org,,html,Asia/Tokyo,,,,,,,,,
waiting@example.org,Waiting Longer,html,,,,,,,,,,
Kept@Example.org,A Duplicate,html,,,,,,,,,,
left@example.org,Left List,html,,,,,,,,,,
bounced@example.org,Bounced,html,,,,,,,,,,
zed@example.org,Zed Again,html,,,,,,,,,,
not-an-email,Nobody,html,,,,,,,,,,
bad.format@example.org,Fax,fax,,,,,,,,,,
bad.zone@example.org,Mars,html,Mars/Base,,,,,,,,,
bad.profile@example.org,Pro,print,,nosuch,,,,,,,,
posted@example.org,Posted Once,print,,default,A-1,South Facility,C,2 Lane,Apt \\N,City,NY,10002
print.new@example.org,Pat Print,print,,default,Z-9,West \\ Facility,,9 Way,,Ville,CA,90001
half.address@example.org,Half,print,,default,Q-1,,,,,,,
emoji@example.org,"Zoë 🎉 =SUM(1)",html,,,,,,,,,,
new.one@example.org,New One Again,html,,,,,,,,,,
,,,,,,,,,,,,
empty.name@example.org,,text,,,,,,,,,,
"""


@pytest.fixture
def reference_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh database of the same kind as ``database_url``, migrated."""
    with second_database(database_url, tmp_path, "reference", migrated=True) as url:
        yield url


def _scenario(project: Any, url: str, tmp_path: Path) -> tuple[list[ImportReport], list[Any]]:
    """The people of FIRST (and one pending), then someone leaves the list, one bounces, one
    is forgotten, then MIXED onto the list: the reports and every row of the audience."""
    settings = project.settings(database_url=url)
    engine = open_engine(settings.database_url, settings.base_dir)
    app = App(settings, engine, Secrets(secret_key=KEY))
    first, mixed, more = tmp_path / "first.csv", tmp_path / "mixed.csv", tmp_path / "more.csv"
    first.write_text(FIRST, encoding="utf-8", newline="")
    mixed.write_text(MIXED, encoding="utf-8", newline="")
    options = {"list_slug": "weekly", "default_format": None, "dry_run": False, "now": NOW}
    reports = [import_csv(app, first, pending=False, **options)]
    more.write_text("email,name\nwaiting@example.org,Waiting\n", encoding="utf-8")
    reports.append(import_csv(app, more, pending=True, **options))
    with engine.begin() as conn:
        left = store.find_subscriber(conn, "left@example.org")
        store.update_membership(conn, left.id, "weekly", status=store.UNSUBSCRIBED)
        store.suppress(
            conn, "bounced@example.org", "bounced@example.org", reason="bounce",
            origin="sendgrid", now=NOW,
        )  # fmt: skip
    forget(engine, app.keys, "zed@example.org", who="test", now=NOW)
    # An upload's own name, which COPY must escape: it becomes each new subscriber's source.
    named = "mixed\tup\\load\n.csv"
    reports.append(import_csv(app, mixed, pending=False, file_name=named, **options))
    more.write_text("email\nkept@example.org\nposted@example.org\n", encoding="utf-8")
    reports.append(import_csv(app, more, pending=False, **options | {"list_slug": "inside"}))
    with engine.connect() as conn:
        rows = [
            conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            for table in (subscribers, memberships, suppressions, mailing_addresses)
        ]
    engine.dispose()
    return reports, rows


def _member(row: Any) -> Member | None:
    return None if row is None else Member(row.status, row.format, row.profile)


def _with_sqlalchemy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk module's statements replaced by SQLAlchemy's plain ones (and its key look-ups
    by the store's general ones), for the reference run."""

    def add_memberships(conn: Any, rows: Any) -> None:
        if rows:
            conn.execute(sa.insert(memberships), list(rows))

    def known_for_import(conn: Any, list_slug: str, keys: Any) -> dict[str, Known]:
        found = store.subscribers_by_key(conn, keys)
        members = store.list_memberships(conn, list_slug, [s.id for s in found.values()])
        return {
            key: Known(sub.id, sub.name, sub.status, sub.timezone, _member(members.get(sub.id)))
            for key, sub in found.items()
        }

    monkeypatch.setattr(bulk, "add_subscribers", store.add_subscribers)
    monkeypatch.setattr(bulk, "add_memberships", add_memberships)
    monkeypatch.setattr(bulk, "known_for_import", known_for_import)
    monkeypatch.setattr(bulk, "suppressed_among", lambda _conn, keys, _marks: list(keys))


def test_the_bulk_import_stores_what_plain_statements_store(
    make_project: Any,
    database_url: str,
    reference_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = make_project(INSIDE)
    monkeypatch.setattr(importer, "CHUNK_ROWS", 4)  # duplicates and changes across chunks
    fast_reports, fast_rows = _scenario(project, database_url, tmp_path)
    _with_sqlalchemy(monkeypatch)
    plain_reports, plain_rows = _scenario(project, reference_url, tmp_path)

    assert fast_rows == plain_rows
    assert fast_reports == plain_reports
    mixed = fast_reports[2]
    assert (mixed.added, mixed.updated, mixed.unchanged) == (5, 4, 1)
    # The file's own rejections of a chunk come before the forgotten one found storing it.
    assert [line for line, _ in mixed.rejected] == [12, 13, 14, 15, 18, 11]
    assert [line for line, _ in mixed.suppressed] == [9, 10]
    assert [line for line, _ in mixed.merged] == [8, 20]
    people, members, _suppressions, addresses = fast_rows
    by_key = {p.email_key: p for p in people}
    assert by_key["new.two@example.org"].name == 'Back\\slash \\N tab "quote" O\'Brien'
    assert by_key["new.two@example.org"].source == "import mixed\tup\\load\n.csv"
    assert by_key["emoji@example.org"].name == "Zoë 🎉 =SUM(1)"
    assert by_key["empty.name@example.org"].name == ""  # empty, not NULL
    assert by_key["moved@example.org"].timezone == "Asia/Tokyo"
    assert by_key["kept@example.org"].timezone is None  # NULL, not empty
    posted = by_key["posted@example.org"].id
    assert [(a.facility, a.address2) for a in addresses if a.subscriber_id == posted] == [
        ("South Facility", "Apt \\N")
    ]
    assert sorted(m.list_slug for m in members if m.subscriber_id == posted) == ["inside", "weekly"]
