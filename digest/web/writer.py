"""One writer for the web app's short writes, committing them in groups.

A commit is a disk flush (SQLite's WAL, PostgreSQL's log): a few milliseconds each, one
after another, whatever else is quick. Requests hand their write to one thread, which runs
every write queued up meanwhile in one transaction and commits once; each request gets its
answer after that commit, so what it reports is on disk. A write that fails makes its
group run again one write a transaction, so only that one fails.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection, Engine

from digest.store.db import one_writer

T = TypeVar("T")
GROUP_MOST = 64  # writes in one transaction at most: a long queue still commits often
IDLE = 30.0  # seconds without a write before the thread ends (the next write starts one)
Work = Callable[[Connection], Any]


class GroupWriter:
    """The writing thread of one engine (started at the first write)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[tuple[Work, Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` inside a transaction that is committed before this returns."""
        done: Future[T] = Future()
        self._queue.put((work, done))
        self._start()
        # Shielded: a visitor who hangs up does not take back a write already queued.
        return await asyncio.shield(asyncio.wrap_future(done))

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="digest-writer", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE)
            except queue.Empty:
                with self._starting:  # run() queues first, then starts a thread if none
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            # The web app's other writers (and, on SQLite, other workers' writers) go
            # first; what queues up meanwhile joins this group.
            group = [first]
            try:
                with one_writer(self.engine):
                    while len(group) < GROUP_MOST:
                        try:
                            group.append(self._queue.get_nowait())
                        except queue.Empty:
                            break
                    self._commit(group)
            except Exception as exc:  # the lock itself failed: these fail, the thread goes on
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)

    def _commit(self, group: list[tuple[Work, Future[Any]]]) -> None:
        try:
            with self.engine.begin() as conn:
                results = [work(conn) for work, _ in group]
        except Exception as exc:
            if len(group) > 1:
                for one in group:
                    self._commit([one])
            else:
                group[0][1].set_exception(exc)
            return
        for (_, done), result in zip(group, results, strict=True):
            done.set_result(result)


class _InTransaction:
    """An engine whose ``begin()`` is a transaction already open: for an action that opens
    its own (``with engine.begin() as conn``), run as one write of a group."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        yield self.conn


def within(conn: Connection) -> Engine:
    """``conn``'s open transaction, for an action that takes an engine (see above)."""
    return cast(Engine, _InTransaction(conn))
