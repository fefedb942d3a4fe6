"""Delivering a planned edition: workers claim batches from the ledger and record each outcome.

A concurrency-limited pool shares one rate gate. 429s wait for SendGrid's reset time;
5xx and refused connections are retried with backoff; a request that went out and got
no answer is uncertain and never retried automatically; a bad key stops everything.
Each state change is committed before the next step, so any crash can be resumed.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from digest.audience.tokens import Keyring
from digest.collector import tuned_for_sending
from digest.config import Settings
from digest.dispatch.batch import LedgerPeople, Outcome, OutgoingBatch, Transport
from digest.dispatch.commits import SharedCommits
from digest.dispatch.personal import LinkMaker
from digest.dispatch.variants import format_of
from digest.models import Attachment, RenderedEmail
from digest.store import ledger, scheduled

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
STALE_AFTER = timedelta(minutes=15)  # an in-flight claim older than this has lost its process
IDLE_POLL = 0.2
YOUNG_GC = 100_000  # objects allocated and not freed before the collector's youngest pass
SWITCH_INTERVAL = 0.0005  # seconds a thread holds the interpreter lock while others wait


@dataclass(frozen=True, slots=True)
class Content:
    """What every message of one variant carries: rendered once per send."""

    email: RenderedEmail
    attachments: tuple[Attachment, ...] = ()


@dataclass(slots=True)
class RunReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    stopped_by: str | None = None  # the reason everything stopped (bad key), if it did
    interrupted: bool = False


@dataclass(slots=True)
class SendRun:
    settings: Settings
    engine: Engine
    edition_id: str
    contents: Mapping[str, Content]  # variant -> what its messages carry
    keys: Keyring
    transport: Transport
    clock: Callable[[], datetime]
    stop: threading.Event
    on_batch: Callable[[int, Outcome, int], None] | None
    worker: str = ""
    report: RunReport = field(default_factory=RunReport)
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    resume_at: float = 0.0  # monotonic time before which nobody posts (a 429's reset)
    schedule: str | None = None  # the provider's batch of this edition's scheduled mail
    commits: SharedCommits = field(init=False)  # its threads' ledger writes

    def __post_init__(self) -> None:
        self.commits = SharedCommits.on(self.engine)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def mark_abandoned(engine: Engine, edition_id: str, now: datetime) -> int:
    """In-flight batches whose process is gone become uncertain. Returns how many."""
    host = socket.gethostname()
    marked = 0
    with engine.begin() as conn:
        for row in ledger.in_flight(conn, edition_id):
            owner_host, _, rest = (row.claimed_by or "").partition(":")
            pid = rest.partition(":")[0]
            gone = owner_host == host and pid.isdigit() and not _alive(int(pid))
            stale = row.claimed_at is not None and row.claimed_at < now - STALE_AFTER
            if gone or stale:
                ledger.mark_uncertain(
                    conn,
                    row.id,
                    "the sending process stopped while this "
                    "batch was in flight: SendGrid may have accepted it",
                    now,
                )
                marked += 1
    return marked


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def deliver_all(run: SendRun) -> RunReport:
    """Run the worker pool until no batch is left pending, or until told to stop."""
    run.worker = worker_name()
    with run.engine.connect() as conn:
        run.schedule = scheduled.schedule_of(conn, run.edition_id)
    count = max(1, run.settings.delivery.concurrency)
    threads = [
        threading.Thread(target=_work, args=(run,), name=f"digest-send-{i}", daemon=True)
        for i in range(count)
    ]
    # The long-lived objects (modules, settings, the edition) never die: keep the
    # collector from scanning them again for every batch (a tenth of a big send's time).
    # A batch's dicts and strings die by their reference counts, not in cycles: at the
    # default 700 new objects the collector ran six times a batch for nothing (1 ms of a
    # batch's CPU, measured); what cycles there are wait for YOUNG_GC new objects.
    # A thread back from the disk or the network waits for the interpreter lock until the
    # thread building a payload lets go: 5 ms by default, several times a batch, and
    # while it holds the database's writer's turn, the other threads and processes wait
    # too (1,000,000 at load 3-4, x2: the turn held 7.6-12.2 -> 3.8-7.8 ms a batch, the
    # delivery 30.5-49.3 -> 21.9-36.3 s).
    with tuned_for_sending(YOUNG_GC, SWITCH_INTERVAL):
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.2)
    return end_of_run(run)


def end_of_run(run: SendRun) -> RunReport:
    """The report, once every worker is done. Another sender may have died while this one
    ran: its batches are uncertain now."""
    mark_abandoned(run.engine, run.edition_id, run.clock())
    run.report.interrupted = run.stop.is_set() and run.report.stopped_by is None
    return run.report


Taken = tuple[ledger.Claimed, list[ledger.RecipientRow]]  # a claimed batch and its people


def _work(run: SendRun) -> None:
    taken: Taken | None = None  # claimed as the last batch was recorded: sent next
    while taken is not None or not run.stop.is_set():
        if taken is None:
            _wait_for_gate(run)
            taken = _take(run)
            if taken is None:
                if _finished(run):
                    return
                run.stop.wait(IDLE_POLL)
                continue
            with run.lock:
                run.active += 1
        claimed, rows = taken
        taken = None
        try:
            outcome, size = _attempt(run, claimed, rows)
            kind, taken = _record(run, claimed, outcome)
            _report(run, claimed, outcome, kind, size)
        except Exception as exc:  # the ledger failed: stop, and say why (never exit quietly)
            log.exception("edition %s batch %s: could not record it", run.edition_id, claimed.seq)
            run.report.stopped_by = (
                f"batch {claimed.seq} could not be recorded ({type(exc).__name__}: {exc}); "
                "the next 'digest send' marks it uncertain"
            )
            run.stop.set()
            _give_back(run, taken)
            taken = None
        finally:
            if taken is None:
                with run.lock:
                    run.active -= 1


def _take(run: SendRun) -> Taken | None:
    """Claim the next due batch and commit the claim (before anything is sent), then read
    its recipients."""
    claimed = run.commits.write(
        lambda conn: ledger.claim(conn, run.edition_id, run.worker, run.clock())
    )
    return _with_people(run, claimed)


def _with_people(run: SendRun, claimed: ledger.Claimed | None) -> Taken | None:
    """A committed claim and its recipients (the read's snapshot ends with it). The read
    is committed, not rolled back as a connection put back mid-transaction is: psycopg
    forgets every statement it prepared on a connection at a rollback (and counts again
    from zero), so on PostgreSQL the claim, the read and the outcome were parsed and
    planned anew for every batch; a commit keeps them."""
    if claimed is None:
        return None
    with run.engine.begin() as conn:  # a transaction of its own: a read on the driver's
        rows = ledger.batch_recipients(conn, claimed.id)  # cursor never begins one
    return claimed, rows


def _give_back(run: SendRun, taken: Taken | None) -> None:
    """A batch claimed with the last one's outcome and never sent goes back to pending
    (if the ledger takes that; else it stays in flight, and a later send says uncertain)."""
    if taken is not None:
        try:
            run.commits.write(lambda conn: ledger.release(conn, taken[0].id, run.clock()))
        except Exception:
            log.exception(
                "edition %s batch %s: could not give it back", run.edition_id, taken[0].seq
            )


def _finished(run: SendRun) -> bool:
    with run.engine.begin() as conn:  # committed, as the read of a batch's recipients is
        pending, _ = ledger.pending(conn, run.edition_id)
    with run.lock:
        return pending == 0 and run.active == 0


def _wait_for_gate(run: SendRun) -> None:
    while not run.stop.is_set():
        with run.lock:
            delay = run.resume_at - time.monotonic()
        if delay <= 0:
            return
        run.stop.wait(min(delay, 0.5))


def _attempt(
    run: SendRun, claimed: ledger.Claimed, rows: list[ledger.RecipientRow]
) -> tuple[Outcome, int]:
    """One try at one batch: its recipients personalised and handed to the transport."""
    maker = LinkMaker.at(run.settings, run.keys, run.clock())
    addressees = LedgerPeople(rows, maker, format_of(claimed.variant))
    content = run.contents.get(claimed.variant)
    if content is None:
        return Outcome(
            "failed",
            reason=f"nothing was built for {claimed.variant!r}: run "
            "'digest build' (print profiles come from config.toml)",
        ), len(rows)
    if claimed.deliver_at is not None and run.schedule is None:
        return Outcome(
            "failed",
            reason="a delivery time without the edition's scheduled send: run 'digest send' "
            "again (it books one)",
        ), len(rows)
    batch = OutgoingBatch(
        run.edition_id,
        claimed.seq,
        claimed.variant,
        content.email,
        addressees,
        content.attachments,
        claimed.deliver_at,
        run.schedule,
    )
    try:
        return run.transport.send(batch), len(rows)
    except Exception as exc:  # a transport bug must not leave the batch in flight for ever
        reason = f"the transport failed: {type(exc).__name__}: {exc}"
        return Outcome("uncertain", reason=reason), len(rows)


def _record(run: SendRun, claimed: ledger.Claimed, outcome: Outcome) -> tuple[str, Taken | None]:
    """The outcome in the ledger, committed; what it was recorded as. After an accepted
    batch the worker's next one is claimed in the same transaction, which the other
    threads' writes waiting by then share (:mod:`digest.dispatch.commits`): a commit
    waits for the disk, and on SQLite one writer at a time commits."""
    kind, following = run.commits.write(lambda conn: _write_outcome(run, conn, claimed, outcome))
    return kind, _with_people(run, following)


def _write_outcome(
    run: SendRun, conn: Connection, claimed: ledger.Claimed, outcome: Outcome
) -> tuple[str, ledger.Claimed | None]:
    """:func:`_record`'s statements: the outcome, and after an accepted batch the claim of
    the next one (if the worker may go on)."""
    now = run.clock()
    kind: str = outcome.kind
    if kind == "accepted":
        ledger.finish(
            conn,
            claimed.id,
            ledger.ACCEPTED,
            now,
            message_id=outcome.message_id,
            accepted_at=now,
            reason=None,
        )
        if _may_claim(run):
            return kind, ledger.claim(conn, run.edition_id, run.worker, run.clock())
    elif kind == "retry" and claimed.attempts < run.settings.delivery.max_attempts:
        delay = _delay(run, claimed.attempts, outcome.wait)
        ledger.finish(
            conn,
            claimed.id,
            ledger.PENDING,
            now,
            reason=outcome.reason,
            not_before=now + timedelta(seconds=delay),
        )
    elif kind == "retry":
        kind = "failed"
        ledger.finish(
            conn,
            claimed.id,
            ledger.FAILED,
            now,
            reason=(f"gave up after {claimed.attempts} attempts: {outcome.reason}"),
        )
    elif kind == "split":
        kind = _split(run, conn, claimed, outcome, now)
    elif kind == "stop":
        ledger.finish(conn, claimed.id, ledger.PENDING, now, reason=outcome.reason)
    else:
        state = ledger.UNCERTAIN if kind == "uncertain" else ledger.FAILED
        ledger.finish(conn, claimed.id, state, now, reason=outcome.reason)
    return kind, None


def _may_claim(run: SendRun) -> bool:
    """Whether a worker goes on to its next batch at once: not told to stop, and no 429's
    reset time to wait for."""
    with run.lock:
        return not run.stop.is_set() and run.resume_at <= time.monotonic()


def _report(run: SendRun, claimed: ledger.Claimed, outcome: Outcome, kind: str, size: int) -> None:
    if kind == "stop":
        run.report.stopped_by = outcome.reason
        run.stop.set()
    with run.lock:
        run.report.outcomes[kind] += 1
    log.info(
        "edition %s batch %s (%s recipients): %s%s",
        run.edition_id,
        claimed.seq,
        size,
        kind,
        f": {outcome.reason}" if outcome.reason else "",
        extra={"edition": run.edition_id, "batch": claimed.seq},
    )
    if run.on_batch is not None:
        run.on_batch(claimed.seq, outcome, 0 if kind == "split" else size)


def _split(
    run: SendRun, conn: Connection, claimed: ledger.Claimed, outcome: Outcome, now: datetime
) -> str:
    if len(ledger.batch_recipients(conn, claimed.id)) < 2:
        ledger.finish(
            conn,
            claimed.id,
            ledger.FAILED,
            now,
            reason=f"too large even for one recipient: {outcome.reason}",
        )
        return "failed"
    ledger.split(conn, claimed.id, run.edition_id, claimed.variant, run.transport.name, now)
    return "split"


def _delay(run: SendRun, attempts: int, wait: float | None) -> float:
    """Seconds before a retry: the provider's reset time, else exponential with jitter."""
    if wait is not None:
        delay = wait + random.uniform(0, 0.25)
        with run.lock:
            run.resume_at = max(run.resume_at, time.monotonic() + delay)
        return delay
    base = run.settings.delivery.retry_base_seconds * 2.0 ** (attempts - 1)
    return float(min(MAX_BACKOFF, base) * random.uniform(0.5, 1.5))
