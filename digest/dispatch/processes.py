"""Delivering a big send with worker processes, so every core works: each process runs
its own pool of threads (:func:`run.deliver_all`) and claims batches from the ledger, as
separate ``digest send`` workers on several machines already do. The ledger's atomic
claims keep every batch to one worker; a worker that dies leaves its batches in flight,
and the next send marks them uncertain, as for any process that stopped.

The parent starts the workers (spawned: a fresh interpreter, never a fork of a process
that runs a web server and a scheduler), passes on a stop (SIGTERM), relays each batch's
outcome to whoever watches, and adds up their reports. A worker dies with its parent
(``PR_SET_PDEATHSIG``), so a killed ``digest send`` leaves nothing sending behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any, NoReturn

from digest.audience.tokens import Keyring
from digest.config import Secrets, Settings
from digest.dispatch.batch import Outcome
from digest.dispatch.run import Content, RunReport, SendRun, deliver_all, end_of_run

# Below these, the start of the processes (a second of CPU each, their imports) costs
# more than the second core brings: when delivery.processes asks for a number, and when
# it is 0 (one per core), where the threads alone were faster at 100 batches.
MIN_BATCHES = 50
AUTO_MIN_BATCHES = 200
MAX_PROCESSES = 4
PR_SET_PDEATHSIG = 1
LEAVE_WITHIN = 1.0  # seconds a dismissed worker has to go before it is killed
FINISH_WITHIN = 60.0  # and one told to stop, to finish the batches in its hands


def process_count(settings: Settings, pending_batches: int, transport: str) -> int:
    """How many worker processes a send of ``pending_batches`` gets: 1 (threads only) for
    a small send (under 50 batches, or 200 with one per core), for a transport other than
    SendGrid or the outbox, or when ``delivery.processes`` is 1; else that many (0: one
    per core, at most 4)."""
    asked = settings.delivery.processes
    wanted = asked or min(MAX_PROCESSES, os.cpu_count() or 1)
    least = MIN_BATCHES if asked else AUTO_MIN_BATCHES
    if wanted <= 1 or pending_batches < least or transport not in ("sendgrid", "outbox"):
        return 1
    return min(wanted, pending_batches // (MIN_BATCHES // 2))


@dataclass(frozen=True, slots=True)
class ShiftedClock:
    """The parent's clock, carried into a worker: its time at the start, plus what the
    worker's monotonic clock says has passed (a pinned or travelled clock stays so)."""

    anchor: datetime
    started: float

    def __call__(self) -> datetime:
        return self.anchor + timedelta(seconds=time.monotonic() - self.started)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker process needs to get ready, all of it picklable: known before the
    plan, so a pool can start while the plan runs."""

    settings: Settings
    secrets: Secrets
    edition_id: str
    keys: Keyring
    anchor: datetime  # the send's start: its transport's time (the outbox's folder)


@dataclass(frozen=True, slots=True)
class Handover:
    """What only the plan gives, handed to a waiting worker as delivery begins."""

    contents: dict[str, Content]
    threads: int
    anchor: datetime  # the parent's clock at the handover


class WorkerPool:
    """Worker processes started ahead of their work: each imports, opens its engine and
    transport, then waits for :class:`Handover` on its own pipe. :meth:`deliver` hands it
    to as many as the send needs; the rest, and all of them when the block ends without
    a delivery (the plan failed, found too little, the send was refused or stopped), are
    told to leave (their pipe closed) and reaped, killed if they do not go at once: none
    has claimed anything yet."""

    def __init__(self, spec: WorkerSpec, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop, self.events = ctx.Event(), ctx.Queue()
        self.workers: list[BaseProcess] = []
        self._pipes: list[Connection] = []
        self._ends: list[Connection] = []
        for _ in range(processes):
            end, pipe = ctx.Pipe(duplex=False)
            args = (spec, os.getpid(), end, self.stop, self.events)
            self.workers.append(ctx.Process(target=work, args=args, daemon=True))
            self._pipes.append(pipe)
            self._ends.append(end)
        self._handed = 0  # the first this many were handed their contents

    def __enter__(self) -> WorkerPool:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        for end in self._ends:
            end.close()  # the worker's now: its pipe ends (EOF) when the parent's does
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        """Each worker is born with SIGINT blocked (a thread's signal mask goes through
        fork and exec) until :func:`work` ignores it: a Ctrl-C while it imports printed a
        KeyboardInterrupt traceback from each. The parent handles Ctrl-C. (Python's own
        resource tracker starts the same way.)"""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for worker in self.workers:
                worker.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    @property
    def size(self) -> int:
        return len(self.workers)

    def deliver(self, run: SendRun, processes: int) -> RunReport:
        """Hand the run's contents to ``processes`` of the workers (the others leave) and
        relay their outcomes to ``run.on_batch`` until no batch is left or the run is told
        to stop."""
        threads = max(1, run.settings.delivery.concurrency // processes)
        handover = Handover(dict(run.contents), threads, run.clock())
        working = self.workers[:processes]
        if run.stop.is_set():  # stopped while it planned: they report at once, claiming nothing
            self.stop.set()
        for pipe in self._pipes[:processes]:
            with contextlib.suppress(OSError):  # a worker that died getting ready
                pipe.send(handover)
        self._handed = processes
        self._dismiss_idle()  # the rest leave now
        finished = 0
        while finished < len(working):
            if run.stop.is_set():
                self.stop.set()
            try:
                message = self.events.get(timeout=0.2)
            except queue.Empty:
                if not any(w.is_alive() for w in working) and self.events.empty():
                    break  # a worker died without its report: what it held stays in flight
                continue
            finished += _relay(run, message, self.stop)
        for worker in working:
            worker.join(timeout=5)
        return end_of_run(run)

    def close(self) -> None:
        """The workers never handed anything leave (their pipes closed), killed if they
        are still getting ready; those delivering are told to stop, and given the time
        to finish and record the batches in their hands (they were joined already when
        their delivery ended as it should)."""
        delivering = [w for w in self.workers[: self._handed] if w.pid is not None]
        self._dismiss_idle()
        if any(w.is_alive() for w in delivering):
            self.stop.set()
        _reap(delivering, FINISH_WITHIN)

    def _dismiss_idle(self) -> None:
        for pipe in self._pipes:
            pipe.close()  # idempotent; a worker handed its contents has them already
        _reap([w for w in self.workers[self._handed :] if w.pid is not None], LEAVE_WITHIN)


def _reap(workers: list[BaseProcess], within: float) -> None:
    deadline = time.monotonic() + within
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            worker.kill()
            worker.join()


def deliver_in_processes(run: SendRun, secrets: Secrets, processes: int) -> RunReport:
    """Run ``processes`` workers on the run's edition until no batch is left or the run
    is told to stop; their outcomes reach ``run.on_batch`` as they come."""
    spec = WorkerSpec(run.settings, secrets, run.edition_id, run.keys, run.clock())
    with WorkerPool(spec, processes) as pool:
        return pool.deliver(run, processes)


def _relay(run: SendRun, message: tuple[Any, ...], stop: ProcessEvent) -> int:
    """One worker's message: a batch's outcome (for the watcher), or its final report."""
    if message[0] == "batch":
        _, seq, kind, reason, size = message
        if run.on_batch is not None:
            run.on_batch(seq, Outcome(kind, reason=reason), size)
        return 0
    _, outcomes, stopped_by = message
    run.report.outcomes.update(outcomes)
    if stopped_by and run.report.stopped_by is None:
        run.report.stopped_by = stopped_by
        stop.set()
    return 1


def work(
    spec: WorkerSpec, parent: int, handed: Connection, stop: ProcessEvent, events: Any
) -> None:
    """A worker process: its own engine and transport, made ready before the handover;
    then threads claiming batches. A closed pipe instead of a handover: leave."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # one pending is dropped
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from digest.context import App
    from digest.store import open_engine

    settings = spec.settings.model_copy(deep=True)
    engine = open_engine(settings.database_url, settings.base_dir)
    app = App(settings, engine, spec.secrets)
    transport = app.transport(spec.anchor)
    try:
        handover: Handover = handed.recv()
    except EOFError:
        engine.dispose()
        _leave(events)
    settings.delivery.concurrency = handover.threads
    local_stop = threading.Event()
    threading.Thread(target=_watch, args=(stop, local_stop), daemon=True).start()

    def on_batch(seq: int, outcome: Outcome, size: int) -> None:
        events.put(("batch", seq, outcome.kind, outcome.reason, size))

    run = SendRun(
        settings,
        engine,
        spec.edition_id,
        handover.contents,
        spec.keys,
        transport,
        ShiftedClock(handover.anchor, time.monotonic()),
        local_stop,
        on_batch,
    )
    report = deliver_all(run)
    events.put(("done", dict(report.outcomes), report.stopped_by))
    engine.dispose()
    _leave(events)


def _leave(events: Any) -> NoReturn:
    """End the worker once its report is through the pipe, without the interpreter's
    teardown: that took 1.5 s of wall time (and CPU) at the end of every send, measured,
    with nothing left to save (every outcome is committed, the report sent, the engine
    disposed)."""
    events.close()
    events.join_thread()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _watch(stop: ProcessEvent, local: threading.Event) -> None:
    stop.wait()
    local.set()


def _die_with(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies; gone already: leave now."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
