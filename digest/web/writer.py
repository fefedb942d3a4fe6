"""One writer for the web app's short writes, committing them in groups.

A commit is a disk flush (SQLite's WAL, PostgreSQL's log): a few milliseconds each, one
after another, whatever else is quick. Requests hand their write to one thread, which runs
every write queued up meanwhile in one transaction and commits once; each request gets its
answer after that commit, so what it reports is on disk. A write that fails makes its
group run again one write a transaction, so only that one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
        self._queue: queue.SimpleQueue[Queued] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._conn: Connection | None = None  # the writing thread's own

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` inside a transaction that is committed before this returns. A
        visitor who hangs up does not take back a write already queued: it runs whatever
        becomes of the request."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._queue.put(Queued(work, done, loop))
        self._start()
        return await done

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
                        self._drop_connection()  # before a new thread may take its place
                        self._thread = None
                        return
                continue
            # The web app's other writers (and, on SQLite, other workers' writers) go
            # first; what queues up meanwhile joins this group.
            group = [first]
            outcomes: list[tuple[Queued, bool, Any]] = []
            try:
                with one_writer(self.engine):
                    while len(group) < GROUP_MOST:
                        try:
                            group.append(self._queue.get_nowait())
                        except queue.Empty:
                            break
                    self._commit(group, outcomes)
            except Exception as exc:  # the lock itself failed: these fail, the thread goes on
                answered = {id(one) for one, _, _ in outcomes}
                outcomes += [(one, False, exc) for one in group if id(one) not in answered]
            _answer(outcomes)

    def _commit(self, group: list[Queued], outcomes: list[tuple[Queued, bool, Any]]) -> None:
        try:
            conn = self._connection()
            with conn.begin():
                results = [one.work(conn) for one in group]
        except Exception as exc:
            self._drop_connection()  # whatever state it is in, the next write gets a new one
            if len(group) > 1:
                for one in group:
                    self._commit([one], outcomes)
            else:
                outcomes.append((group[0], False, exc))
            return
        outcomes += [(one, True, result) for one, result in zip(group, results, strict=True)]

    def _connection(self) -> Connection:
        """The thread's connection, kept from one group to the next (taking one from the
        pool and giving it back, rolled back, cost as much CPU as a group's two writes),
        closed when the thread ends or a group fails."""
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: gone either way
                conn.close()


@dataclass(frozen=True, slots=True)
class Queued:
    """One write, the future its request awaits, and that request's event loop."""

    work: Work
    done: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _answer(outcomes: list[tuple[Queued, bool, Any]]) -> None:
    """Every request of a group answered with one wake-up of its event loop (one a loop),
    not one each: a wake-up is a write to the loop's pipe and a turn of the loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Queued, bool, Any]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, these in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, these)


def _settle(outcomes: list[tuple[Queued, bool, Any]]) -> None:
    for one, ok, value in outcomes:
        if one.done.done():  # cancelled: the visitor hung up (the write stands)
            continue
        if ok:
            one.done.set_result(value)
        else:
            one.done.set_exception(value)


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
