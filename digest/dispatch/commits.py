"""The ledger writes of one process's sending threads, committed together on SQLite.

Every batch's outcome and its worker's next claim are committed before that worker posts
again, and on SQLite a commit waits for the disk (``synchronous=FULL``: 4-8 ms on this
machine's disk) while it holds the database's one write lock, and SQLite's busy handler
makes the other writers sleep 1, 2, 5, 10... ms between tries. So the threads of a
process take turns (:func:`digest.store.db.one_writer`, which queues the other processes
too, and wakes the next as soon as the turn is free), and whoever has the turn writes
every write waiting by then, its own and its neighbours', in one transaction: one commit
(one wait for the disk) for all of them (at a million recipients with two threads a
process, 6-13% of the commits carried two).
Each write is still committed before its thread goes on, so every claim is on disk
before its batch is posted, and a thread still holds one batch at most.

A write that raises is rolled back with its group, which goes in again without it, so
one write's error is its own thread's only; a commit that fails is every write's error.
Other databases commit each thread's writes by itself: PostgreSQL takes row locks and
flushes concurrent commits together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

from digest.store.db import one_writer

T = TypeVar("T")


@dataclass(slots=True)
class _Write(Generic[T]):
    """One thread's statements, waiting for a turn; then what they returned or raised."""

    statements: Callable[[Connection], T]
    done: bool = False
    result: T | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class SharedCommits:
    """One process's writers of one database (a send's threads share one)."""

    engine: Engine
    together: bool = False  # SQLite: writes wait for a turn and share its commit
    _waiting: list[_Write[object]] = field(default_factory=list)
    _turn: threading.Condition = field(default_factory=threading.Condition)
    _leading: bool = False  # a thread of this process has the turn

    @classmethod
    def on(cls, engine: Engine) -> SharedCommits:
        return cls(engine, together=engine.dialect.name == "sqlite")

    def write(self, statements: Callable[[Connection], T]) -> T:
        """Run ``statements`` on a connection in a transaction and commit it (perhaps
        with other threads' writes in the same transaction); what they returned."""
        if not self.together:
            with self.engine.connect() as conn:
                result = statements(conn)
                conn.commit()
            return result
        mine: _Write[T] = _Write(statements)
        with self._turn:
            self._waiting.append(mine)  # type: ignore[arg-type]
            while self._leading and not mine.done:
                self._turn.wait()
            if not mine.done:
                self._leading = True
        if not mine.done:
            self._lead()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """This thread's turn: once the database's writer is this process, every write
        waiting by then, in one transaction."""
        group: list[_Write[object]] = []
        try:
            with one_writer(self.engine):
                with self._turn:
                    group, self._waiting = self._waiting, []
                self._commit(group)
        except BaseException as exc:  # never leave a neighbour waiting for ever
            for write in group:
                if not write.done:
                    _settle(write, error=exc)
            raise
        finally:
            with self._turn:
                self._leading = False
                self._turn.notify_all()

    def _commit(self, group: list[_Write[object]]) -> None:
        """The group's writes in one transaction. A write that raises is told so and the
        transaction goes again without it; if the commit itself fails, every write of the
        group is told (none is tried again: a claim must never be made twice)."""
        while group:
            failed: int | None = None
            try:
                with self.engine.connect() as conn:
                    results = []
                    for index, write in enumerate(group):
                        failed = index
                        results.append(write.statements(conn))
                    failed = None
                    conn.commit()
            except Exception as exc:
                if failed is None:
                    for write in group:
                        _settle(write, error=exc)
                    return
                _settle(group[failed], error=exc)
                group = group[:failed] + group[failed + 1 :]
                continue
            for write, result in zip(group, results, strict=True):
                _settle(write, result=result)
            return


def _settle(
    write: _Write[T], *, result: T | None = None, error: BaseException | None = None
) -> None:
    write.result, write.error, write.done = result, error, True
