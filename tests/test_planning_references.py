"""Planning on SQLite writes its rows without foreign key checks (they are made of the ids
it joins): the connection checks them again once the plan is done, planned or failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.store import open_engine
from digest.store.planning import planning_connection


def _checks(conn) -> int:  # type: ignore[no-untyped-def]
    return int(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())


def test_foreign_keys_are_checked_again_after_a_plan(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'd.db'}", tmp_path)
    with planning_connection(engine) as conn:
        assert _checks(conn) == 0
    with pytest.raises(ZeroDivisionError), planning_connection(engine) as conn:
        1 / 0  # noqa: B018
    for _ in range(3):  # whichever pooled connection comes next
        with engine.connect() as conn:
            assert _checks(conn) == 1
    with planning_connection(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0  # committed
    engine.dispose()
