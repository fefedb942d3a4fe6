"""The web writer keeps one database connection from one group of writes to the next
(issue 18: taking one from the pool and giving it back cost as much CPU as the writes),
and a group that fails leaves it for a new one: the next writes are stored all the same."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.audience.actions import unsubscribe
from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.web.writer import GroupWriter, within
from tests.conftest import NOW, import_people

KEY = "writer-test-secret-key-0123456789"


@pytest.fixture
def people(make_project, tmp_path: Path):
    project = make_project()
    settings, engine = project.settings(), project.engine()
    csv = tmp_path / "p.csv"
    csv.write_text("email\n" + "".join(f"p{i}@example.org\n" for i in range(4)))
    import_people(settings, engine, csv)
    yield engine
    engine.dispose()


def test_one_connection_for_group_after_group_and_a_new_one_after_a_failure(people) -> None:
    engine = people
    keys = Keyring(KEY.encode())
    tokens = [keys.make("unsubscribe", i, "weekly", now=NOW) for i in range(1, 5)]
    checkouts: list[int] = []
    sa.event.listen(engine, "checkout", lambda *_: checkouts.append(1))
    writer = GroupWriter(engine)

    def leave(token: str) -> object:
        return writer.run(lambda c: unsubscribe(within(c), keys, token, now=NOW).changed)

    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("SELECT * FROM no_such_table")

    async def one_after_another() -> list[object]:
        answers: list[object] = [await leave(tokens[0]), await leave(tokens[1])]
        try:
            await writer.run(broken)
        except sa.exc.DBAPIError as exc:
            answers.append(type(exc).__name__)
        answers += [await leave(tokens[2]), await leave(tokens[3])]
        return answers

    assert asyncio.run(one_after_another()) == [True, True, "OperationalError", True, True]
    # The two groups before the failure shared one connection; after it, one more.
    assert len(checkouts) == 2
    for i in range(4):
        assert details(engine, f"p{i}@example.org").memberships[0].status == "unsubscribed"
