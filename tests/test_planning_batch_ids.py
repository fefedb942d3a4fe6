"""A plan writes each row's batch id as its batch's seq plus one difference when its
batches' ids follow their seqs (planning.batch_id_offset), and looks each batch up by
seq when they do not (another writer took ids between): the same people in the same
batches as placing them one by one, either way, on a first plan and on a second."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Connection

from digest.context import App
from digest.store import ledger, planning
from tests.test_planning_few import _plans
from tests.test_planning_integrity import app

__all__ = ["app"]  # the fixture, imported


def _offsets_spied(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    found: list[int | None] = []
    real = planning.batch_id_offset

    def spy(*args: Any) -> int | None:
        found.append(real(*args))
        return found[-1]

    monkeypatch.setattr(planning, "batch_id_offset", spy)
    return found


def test_batches_whose_ids_follow_their_seqs_take_rows_by_one_difference(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    offsets = _offsets_spied(monkeypatch)
    assert [len(p) for p in _plans(app)] == [89, 40]
    assert len(offsets) == 2 and None not in offsets


def test_batches_given_ids_against_their_seqs_take_the_same_rows(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ledger.add_batches

    def backwards(
        conn: Connection, edition_id: str, first_seq: int, count: int, *args: Any, **kw: Any
    ) -> None:  # each batch alone, the last seq first: ids that fall as the seqs rise
        for seq in reversed(range(first_seq, first_seq + count)):
            real(conn, edition_id, seq, 1, *args, **kw)

    monkeypatch.setattr(ledger, "add_batches", backwards)
    offsets = _offsets_spied(monkeypatch)
    assert [len(p) for p in _plans(app)] == [89, 40]
    assert offsets == [None, None]
