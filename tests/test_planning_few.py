"""A plan of an audience of few groups (the usual one: a format or two, nobody's own
zone) counts and numbers its newcomers on SQLite without sorting them (planning.FEW):
the same people in the same batches as placing them one by one, and as the sorting path
it replaces, on a first plan and on a second one after newcomers joined."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from digest.context import App
from digest.dispatch.plan import plan_send
from digest.store import audience, planning
from digest.store.tables import memberships, subscribers
from tests.conftest import NOW
from tests.test_planning_integrity import SLUGS, _edition, _placed_one_by_one, _planned, app

__all__ = ["app"]  # the fixture, imported


def _joined(app: App, ids: range) -> None:
    """Subscribers on the weekly list: one in four wants text, one in five only the news
    (three groups, two of them in one variant's batches or not, as the variants say)."""
    people = [
        {
            "id": i,
            "email": f"p{i}@example.org",
            "email_key": f"p{i}@example.org",
            "name": f"P {i}",
            "status": audience.ACTIVE,
            "source": "test",
            "created": NOW,
        }
        for i in ids
    ]
    members = [
        {
            "subscriber_id": i,
            "list_slug": "weekly",
            "status": audience.ACTIVE,
            "format": "text" if i % 4 == 0 else "html",
            "sections": "news" if i % 5 == 0 else None,
            "created": NOW,
        }
        for i in ids
    ]
    with app.engine.begin() as conn:
        conn.execute(sa.insert(subscribers), people)
        conn.execute(sa.insert(memberships), members)


def _plans(app: App) -> list[list[tuple[int, int]]]:
    """(seq, subscriber) of two plans, the second after more people joined, each checked
    against placing them one by one."""
    found = []
    for ids in (range(1, 90), range(90, 130)):
        _joined(app, ids)
        edition = _edition(app)
        expected = _placed_one_by_one(app, edition)
        after = max((seq for seq, _ in _planned(app, edition, 0)), default=0)
        plan_send(app, edition, SLUGS, transport="outbox", now=NOW, dry_run=False)
        planned = _planned(app, edition, after)
        assert planned == expected and len(planned) == len(ids)
        found.append(planned)
    return found


def _spied(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., Any] = getattr(planning, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, name, spy)
    return calls


@pytest.mark.parametrize("few", [planning.FEW, 0], ids=["unsorted", "sorted"])
def test_few_groups_are_counted_and_numbered_as_one_by_one(
    app: App, few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "FEW", few)
    counted = _spied(monkeypatch, "_counted_by_filter")
    plans = _plans(app)
    assert [len(p) for p in plans] == [89, 40]
    unsorted = app.engine.dialect.name == "sqlite" and few > 0
    assert len(counted) == (2 if unsorted else 0)
