"""What the memberships' dropped foreign key to their list guarded (migration 0020), held by
the one writer of memberships: a membership of a list the database does not hold is
refused, and nothing of it is written; the migration goes both ways, keeping every row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from digest.errors import AudienceError
from digest.store import audience, open_engine
from digest.store.db import MIGRATIONS
from digest.store.tables import memberships, subscribers
from tests.conftest import NOW


@pytest.fixture
def engine(database_url: str, make_project) -> sa.Engine:  # type: ignore[no-untyped-def]
    settings = make_project("").settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    with engine.begin() as conn:
        audience.sync_lists(conn, settings.lists)
        conn.execute(
            sa.insert(subscribers),
            [
                {"id": i, "email": f"p{i}@example.org", "email_key": f"p{i}@example.org",
                 "name": "", "status": audience.ACTIVE, "source": "test", "created": NOW}
                for i in (1, 2)
            ],
        )  # fmt: skip
    return engine


def _member(subscriber_id: int, slug: str) -> dict[str, object]:
    return {
        "subscriber_id": subscriber_id,
        "list_slug": slug,
        "status": audience.ACTIVE,
        "format": "html",
        "profile": None,
        "created": NOW,
    }


def _rows(engine: sa.Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        query = sa.select(memberships.c.subscriber_id, memberships.c.list_slug)
        return sorted((r[0], r[1]) for r in conn.execute(query))


def test_a_membership_of_an_unknown_list_is_refused_and_nothing_is_written(
    engine: sa.Engine,
) -> None:
    refused = pytest.raises(AudienceError, match="no list 'nosuch' in the database")
    with refused, engine.begin() as conn:
        audience.add_memberships(conn, [_member(1, "weekly"), _member(2, "nosuch")])
    assert _rows(engine) == []
    with engine.begin() as conn:
        audience.add_memberships(conn, [_member(1, "weekly"), _member(2, "weekly")])
    assert _rows(engine) == [(1, "weekly"), (2, "weekly")]


def _list_keys(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        found = sa.inspect(conn).get_foreign_keys("memberships")
    return sorted((f["constrained_columns"][0], f["referred_table"]) for f in found)


def test_the_migration_drops_the_list_check_and_gives_it_back(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        audience.add_memberships(conn, [_member(1, "weekly"), _member(2, "weekly")])
    assert _list_keys(engine) == [("subscriber_id", "subscribers")]
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0019")
    assert _list_keys(engine) == [("list_slug", "lists"), ("subscriber_id", "subscribers")]
    assert _rows(engine) == [(1, "weekly"), (2, "weekly")]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert _list_keys(engine) == [("subscriber_id", "subscribers")]
    assert _rows(engine) == [(1, "weekly"), (2, "weekly")]
