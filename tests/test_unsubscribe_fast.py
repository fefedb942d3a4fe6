"""The one-click unsubscribe's own queries (issue 18): one read and at most three writes,
stored exactly as before, on SQLite and PostgreSQL; a repeat changes nothing, a bounce's
suppression is kept, a forged link or a deleted person is refused."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.audience.actions import unsubscribe, unsubscribe_on
from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.errors import AudienceError
from digest.store import audience as store
from digest.store import open_engine
from digest.store.tables import memberships, subscribers, suppressions
from tests.conftest import NOW, import_people

KEYS = Keyring(b"fast-unsubscribe-test-key-0123456789")
EXTRA = '[[lists]]\nslug = "alerts"\nname = "Alerts"\nkind = "alerts"\n'


@pytest.fixture
def people(make_project, database_url: str, tmp_path: Path):
    project = make_project(EXTRA)
    settings = project.settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    csv = tmp_path / "p.csv"
    csv.write_text("email\nana@example.org\nbo@example.org\ncy@example.org\n")
    import_people(settings, engine, csv)
    import_people(settings, engine, csv, list_slug="alerts")
    yield engine
    engine.dispose()


def _statements(engine: sa.Engine) -> list[str]:
    """Every statement sent to the database, SQLAlchemy's and the driver cursor's alike."""
    seen: list[str] = []

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        if hasattr(dbapi_conn, "set_trace_callback"):
            dbapi_conn.set_trace_callback(seen.append)

    engine.dispose()  # connections made from now on are traced
    return seen


def _token(sid: int, slug: str = "weekly") -> str:
    return KEYS.make("unsubscribe", sid, slug, now=NOW)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's trace callback
def test_the_last_list_is_one_read_and_three_writes_and_a_repeat_only_reads(people) -> None:
    unsubscribe(people, KEYS, _token(1, "alerts"), now=NOW)
    seen = _statements(people)
    with people.begin() as conn:
        first = unsubscribe_on(conn, KEYS, _token(1), now=NOW, origin="web")
    words = [s.split()[0].upper() for s in seen if not s.startswith(("BEGIN", "COMMIT", "PRAGMA"))]
    assert first.changed and first.email == "ana@example.org"
    assert words == ["SELECT", "UPDATE", "UPDATE", "INSERT"]
    seen.clear()
    with people.begin() as conn:
        again = unsubscribe_on(conn, KEYS, _token(1), now=NOW, origin="web")
    assert not again.changed
    assert [s.split()[0].upper() for s in seen if s.startswith(("SELECT", "UPDATE", "INSERT"))] == [
        "SELECT"
    ]


def test_leaving_one_list_of_two_keeps_the_address_and_stores_what_sqlalchemy_would(
    people,
) -> None:
    result = unsubscribe(people, KEYS, _token(2), now=NOW)
    assert result.changed and result.list_slug == "weekly"
    info = details(people, "bo@example.org")
    assert {m.list_slug: m.status for m in info.memberships} == {
        "alerts": "active",
        "weekly": "unsubscribed",
    }
    assert info.status == "active" and info.suppression is None
    with people.connect() as conn:
        changed = conn.execute(
            sa.select(memberships.c.changed).where(
                memberships.c.subscriber_id == 2, memberships.c.list_slug == "weekly"
            )
        ).scalar_one()
    assert changed == NOW  # an aware datetime back, the same instant
    assert not unsubscribe(people, KEYS, _token(2), now=NOW).changed

    last = unsubscribe(people, KEYS, _token(2, "alerts"), now=NOW)
    assert last.changed
    info = details(people, "bo@example.org")
    assert info.status == "unsubscribed" and info.unsubscribed == NOW
    assert info.suppression == {
        "reason": "unsubscribed",
        "origin": "unsubscribe link",
        "since": NOW.astimezone(UTC).isoformat(),
    }
    with people.connect() as conn:
        mailed = {r.email for r in store.recipients_for(conn, ["weekly", "alerts"])}
    assert "bo@example.org" not in mailed and "ana@example.org" in mailed


def test_a_suppression_already_there_stays_as_it_was(people) -> None:
    with people.begin() as conn:  # a bounce suppressed the address; the lists still say active
        store.suppress(
            conn, "cy@example.org", "cy@example.org", reason="bounced", origin="sendgrid", now=NOW
        )
    unsubscribe(people, KEYS, _token(3), now=NOW)
    assert unsubscribe(people, KEYS, _token(3, "alerts"), now=NOW).changed
    info = details(people, "cy@example.org")
    assert info.status == "unsubscribed"
    assert info.suppression is not None and info.suppression["reason"] == "bounced"
    with people.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(suppressions)).scalar() == 1


@pytest.mark.parametrize("token", ["", "nonsense", "abc.def", _token(1)[:-2] + "xx"])
def test_a_forged_or_cut_link_is_refused_and_nothing_changes(people, token: str) -> None:
    with people.begin() as conn, pytest.raises(AudienceError, match="not valid"):
        unsubscribe_on(conn, KEYS, token, now=NOW)
    with pytest.raises(AudienceError, match="not valid"):
        unsubscribe(people, KEYS, KEYS.make("preferences", 1, "weekly", now=NOW), now=NOW)
    assert {m.status for m in details(people, "ana@example.org").memberships} == {"active"}


def test_a_link_of_someone_deleted_is_refused(people) -> None:
    with people.begin() as conn, pytest.raises(AudienceError, match="no longer hold"):
        unsubscribe_on(conn, KEYS, _token(999), now=NOW)
    with people.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(subscribers)).scalar()
    assert count == 3
