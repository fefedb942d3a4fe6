"""What a subscriber does from a link: unsubscribe, confirm, preferences. Each idempotent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.audience import actions
from digest.audience.importer import import_csv
from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.config import Secrets
from digest.errors import AudienceError
from digest.store import audience as store
from tests.conftest import NOW

SECRET = "a-test-key-of-some-length"
KEYS = Keyring(SECRET.encode())
EXTRA = '[[lists]]\nslug = "alerts"\nname = "Alerts"\nkind = "alerts"\n'


@pytest.fixture
def people(make_project, tmp_path: Path):
    project = make_project(EXTRA)
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("email,name\nana@example.org,Ana\nbo@example.org,Bo\n")
    for slug in ("weekly", "alerts"):
        import_csv(
            project.app(),
            csv_file,
            list_slug=slug,
            default_format=None,
            pending=False,
            dry_run=False,
            now=NOW,
        )
    return project


def _token(purpose: str, sid: int = 1, slug: str = "weekly", now=NOW) -> str:
    return KEYS.make(purpose, sid, slug, now=now)


def _lists(project, email: str) -> dict[str, str]:
    return {m.list_slug: m.status for m in details(project.engine(), email).memberships}


def test_unsubscribe_leaves_one_list_and_is_idempotent(people) -> None:
    engine = people.engine()
    first = actions.unsubscribe(engine, KEYS, _token("unsubscribe"), now=NOW)
    assert first.changed and first.list_slug == "weekly"
    assert _lists(people, "ana@example.org") == {"alerts": "active", "weekly": "unsubscribed"}
    again = actions.unsubscribe(engine, KEYS, _token("unsubscribe"), now=NOW)
    assert not again.changed
    with engine.connect() as conn:
        assert [r.email for r in store.recipients_for(conn, ["weekly"])] == ["bo@example.org"]


def test_leaving_the_last_list_suppresses_the_address(people) -> None:
    engine = people.engine()
    actions.unsubscribe(engine, KEYS, _token("unsubscribe"), now=NOW)
    actions.unsubscribe(engine, KEYS, _token("unsubscribe", slug="alerts"), now=NOW)
    info = details(engine, "ana@example.org")
    assert info.status == "unsubscribed" and info.suppression is not None
    assert info.unsubscribed is not None


def test_a_years_old_unsubscribe_link_still_works(people) -> None:
    old = _token("unsubscribe", now=NOW - timedelta(days=5 * 365))
    assert actions.unsubscribe(people.engine(), KEYS, old, now=NOW).changed


@pytest.mark.parametrize("token", ["", "nonsense", "abc.def"])
def test_bad_links_are_refused_and_change_nothing(people, token: str) -> None:
    with pytest.raises(AudienceError, match="not valid"):
        actions.unsubscribe(people.engine(), KEYS, token, now=NOW)
    assert _lists(people, "ana@example.org") == {"alerts": "active", "weekly": "active"}


def test_a_preferences_token_cannot_unsubscribe(people) -> None:
    with pytest.raises(AudienceError):
        actions.unsubscribe(people.engine(), KEYS, _token("preferences"), now=NOW)


def test_preferences_change_lists_format_and_profile(people) -> None:
    engine, ctx = people.engine(), people.app(secrets=Secrets(secret_key=SECRET))
    token = _token("preferences", sid=2)
    result = actions.set_preferences(ctx, token, lists={"alerts": False}, fmt="text", now=NOW)
    assert result.changed
    info = details(engine, "bo@example.org")
    assert {m.list_slug: (m.status, m.format) for m in info.memberships} == {
        "alerts": ("unsubscribed", "text"),
        "weekly": ("active", "text"),
    }
    same = actions.set_preferences(ctx, token, lists={"alerts": False}, fmt="text", now=NOW)
    assert not same.changed
    back = actions.set_preferences(ctx, token, lists={"alerts": True}, now=NOW)
    assert back.changed and _lists(people, "bo@example.org")["alerts"] == "active"


def test_leave_everything_from_preferences(people) -> None:
    engine, ctx = people.engine(), people.app(secrets=Secrets(secret_key=SECRET))
    token = _token("preferences", sid=2)
    assert actions.set_preferences(ctx, token, leave_all=True, now=NOW).changed
    assert not actions.set_preferences(ctx, token, leave_all=True, now=NOW).changed
    info = details(engine, "bo@example.org")
    assert info.suppression is not None and info.suppression["reason"] == "unsubscribed"
    with pytest.raises(AudienceError, match="left every list"):
        actions.set_preferences(ctx, token, lists={"weekly": True}, now=NOW)


def test_confirm_activates_a_pending_subscriber_once_and_expires(make_project, tmp_path) -> None:
    project = make_project()
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("email\nnew@example.org\n")
    import_csv(
        project.app(),
        csv_file,
        list_slug="weekly",
        default_format=None,
        pending=True,
        dry_run=False,
        now=NOW,
    )
    engine = project.engine()
    with engine.connect() as conn:
        assert list(store.recipients_for(conn, ["weekly"])) == []
    token = _token("confirm", now=NOW)
    late = NOW + timedelta(days=30)
    with pytest.raises(AudienceError, match="not valid"):
        actions.confirm(engine, KEYS, token, now=late)
    assert actions.confirm(engine, KEYS, token, now=NOW + timedelta(hours=1)).changed
    assert not actions.confirm(engine, KEYS, token, now=NOW + timedelta(hours=2)).changed
    with engine.connect() as conn:
        assert [r.email for r in store.recipients_for(conn, ["weekly"])] == ["new@example.org"]
        confirmed = conn.execute(sa.text("select confirmed from subscribers")).scalar()
    assert confirmed is not None
