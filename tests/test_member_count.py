"""How many a send will reach, counted roughly before it plans (to choose how many worker
processes it gets): the active memberships of its lists."""

from __future__ import annotations

from digest.config import ListSettings
from digest.store import audience, open_engine
from tests.conftest import NOW


def test_member_count_is_the_active_memberships_of_the_lists_asked(database_url, tmp_path) -> None:
    engine = open_engine(database_url, tmp_path)
    slugs = ("weekly", "extra", "other")
    people = [
        {
            "email": f"p{i}@example.org",
            "email_key": f"p{i}@example.org",
            "name": "",
            "status": "active",
            "source": "test",
            "created": NOW,
        }
        for i in range(6)
    ]
    with engine.begin() as conn:
        audience.sync_lists(conn, [ListSettings(slug=s, name=s) for s in slugs])
        ids = list(audience.add_subscribers(conn, people).values())
        member = {"format": "html", "profile": None, "created": NOW}
        rows = [
            (ids[0], "weekly", "active"),
            (ids[1], "weekly", "active"),
            (ids[1], "extra", "active"),  # on two of the lists: counted twice
            (ids[2], "weekly", "pending"),
            (ids[3], "weekly", "unsubscribed"),
            (ids[4], "other", "active"),  # a list not asked for
        ]
        audience.add_memberships(
            conn,
            [{"subscriber_id": i, "list_slug": s, "status": st, **member} for i, s, st in rows],
        )
    with engine.connect() as conn:
        assert audience.member_count(conn, ["weekly"]) == 2
        assert audience.member_count(conn, ["weekly", "extra"]) == 3
        assert audience.member_count(conn, ["other"]) == 1
        assert audience.member_count(conn, []) == 0
    engine.dispose()
