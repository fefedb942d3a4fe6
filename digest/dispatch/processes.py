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
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

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
    """What a worker process needs, all of it picklable."""

    settings: Settings
    secrets: Secrets
    edition_id: str
    contents: dict[str, Content]
    keys: Keyring
    threads: int
    anchor: datetime


def deliver_in_processes(run: SendRun, secrets: Secrets, processes: int) -> RunReport:
    """Run ``processes`` workers on the run's edition until no batch is left or the run
    is told to stop; their outcomes reach ``run.on_batch`` as they come."""
    ctx = multiprocessing.get_context("spawn")
    stop, events = ctx.Event(), ctx.Queue()
    spec = WorkerSpec(
        run.settings,
        secrets,
        run.edition_id,
        dict(run.contents),
        run.keys,
        max(1, run.settings.delivery.concurrency // processes),
        run.clock(),
    )
    workers = [
        ctx.Process(target=work, args=(spec, os.getpid(), stop, events), daemon=True)
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    finished = 0
    while finished < len(workers):
        if run.stop.is_set():
            stop.set()
        try:
            message = events.get(timeout=0.2)
        except queue.Empty:
            if not any(w.is_alive() for w in workers) and events.empty():
                break  # a worker died without its report: what it held stays in flight
            continue
        finished += _relay(run, message, stop)
    for worker in workers:
        worker.join(timeout=5)
    return end_of_run(run)


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


def work(spec: WorkerSpec, parent: int, stop: ProcessEvent, events: Any) -> None:
    """A worker process: its own engine and transport, threads claiming batches."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from digest.context import App
    from digest.store import open_engine

    settings = spec.settings.model_copy(deep=True)
    settings.delivery.concurrency = spec.threads
    engine = open_engine(settings.database_url, settings.base_dir)
    app = App(settings, engine, spec.secrets)
    local_stop = threading.Event()
    threading.Thread(target=_watch, args=(stop, local_stop), daemon=True).start()

    def on_batch(seq: int, outcome: Outcome, size: int) -> None:
        events.put(("batch", seq, outcome.kind, outcome.reason, size))

    run = SendRun(
        settings,
        engine,
        spec.edition_id,
        spec.contents,
        spec.keys,
        app.transport(spec.anchor),
        ShiftedClock(spec.anchor, time.monotonic()),
        local_stop,
        on_batch,
    )
    report = deliver_all(run)
    events.put(("done", dict(report.outcomes), report.stopped_by))
    engine.dispose()
    _leave(events)


def _leave(events: Any) -> None:
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
