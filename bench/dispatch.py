"""Planning and delivering one edition to many recipients through a fake SendGrid.

Run from the repository root: ``python bench/dispatch.py [--recipients 100000 1000000]
[--latency 0 0.05] [--database-url postgresql://...]``. Each (recipients, latency) case
runs in its own child process (``--one N L``), so its peak RSS is its own: a fresh SQLite
database in a temporary folder (or the PostgreSQL database given, its public schema
dropped first: a throwaway one, as ``scripts/with-postgres`` makes), N subscribers on one
digest list, one built edition (about 50 KB of HTML), then the send as the lifecycle's
runs it: the fake SendGrid of tests/fake_sendgrid.py started first in yet another process
(bench/fake_server.py, which answers each request after ``latency`` seconds), ``plan_send``
inside ``WorkersAhead`` (the worker processes, ``delivery.processes``, one per core, start
while it plans), then ``deliver`` with them and the SendGrid transport. Prints a
Markdown table and checks the targets (issue 18): a million recipients planned and
delivered in under 20 s on SQLite (25 s on PostgreSQL) without latency, peak RSS of any
one process under 150 MB, and RSS flat as the list grows (the largest list within 20%
of the smallest); and that the fake accepted every address exactly once. Beside them:
the numbers before issue 18, and the fake's own ceiling (the same request bytes posted
one after another), so a figure compares across machines as a ratio.
Peak RSS is each process's own high-water mark (VmHWM, sampled from /proc for the
workers and the fake): ``ru_maxrss`` is carried across fork and exec on Linux, so every
child reported at least its parent's peak at its birth.

The "in a worker" milliseconds (threads only, ``--processes 1``) are medians per batch,
measured inside the four worker threads (so they include waiting for the GIL): links
(the rest of run.py's ``_attempt``: since the links are made from the ledger's rows as
the payload is built, little), build (``build_payload``, with the signed links), JSON
(``encode_payload``, orjson), HTTP (the rest of ``SendGridTransport.send``: request,
the fake's work and latency, response) and ledger (every database block of the worker:
claim, recipients read, outcome, commits). The single-thread table measures one
representative batch of 1000 outside the pool, after the delivery (outside its timing).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import digest.dispatch.run as run_module
import digest.dispatch.sendgrid as sendgrid_module
from digest.audience.tokens import keyring
from digest.config import Secrets, Settings
from digest.context import App
from digest.dispatch.batch import Addressee, LedgerPeople, Outcome, OutgoingBatch, Transport
from digest.dispatch.personal import LinkMaker
from digest.dispatch.plan import plan_send
from digest.dispatch.processes import process_count
from digest.dispatch.send import WorkersAhead, deliver
from digest.dispatch.variants import format_of
from digest.lifecycle.sending import find_edition, lists_for
from digest.lifecycle.states import Kind
from digest.models import Edition, Recipient, RenderedEmail
from digest.render import render_email
from digest.store import audience, ledger, open_engine
from digest.store.editions import StoredEdition, save_edition
from digest.store.tables import batches, memberships, subscribers
from tests.golden_edition import _article, golden_edition, golden_settings

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = {"sqlite": 20.0, "postgresql": 25.0}  # plan + delivery of a million
DELIVERY_TARGET_N = 1_000_000
RSS_TARGET_MB = 150.0
# Measured before issue 18 on this 2-core machine (1,000,000 recipients, SQLite, latency
# 0, four threads in one process), from the table.
BEFORE = {"plan_s": 15.6, "delivery_s": 32.3, "rss_mb": 158.0}
CEILING_POSTS = 30
RSS_FLAT = 0.20
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CHUNK = 10_000
LIST = "weekly"
SECRET_KEY = "bench-secret-key-0123456789abcdef"
FAKE = ROOT / "bench" / "fake_server.py"
FIRST = ["Ana", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "José", "Zoë"]
LAST = ["Lima", "Okonkwo", "Ramírez", "Müller", "Nguyen", "O'Brien", "Smith"]
SUMMARY = (
    "A summary of about thirty words that tells the reader what happened, who it affects "
    "and what they can do next — with a dash, an ellipsis… and <angle brackets>. "
)
STAGES = ("ledger", "links", "build", "json", "send")
MICRO_REPEAT = 5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's own peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that across
    fork and exec, so a child would report at least its parent's peak at its birth."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if pid != "self":
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """This process's CPU time and that of its finished children (the worker processes)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class ChildPeaks:
    """The peak RSS of each child of this process (the worker processes, the fake),
    sampled every 0.1 s from /proc while it lives (a peak only grows)."""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ChildPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = str(os.getpid())
        mine = Path("/proc/self/cmdline").read_bytes()
        while True:
            for task in Path(f"/proc/{me}/task").glob("*/children"):
                try:
                    pids = task.read_text().split()
                except OSError:
                    continue
                for pid in pids:
                    if _cmdline(pid) == mine:
                        continue  # forked, not yet exec'd: its VmHWM is still this process's
                    peak = peak_rss_mb(pid)
                    self.peaks[int(pid)] = max(self.peaks.get(int(pid), 0.0), peak)
            if self._stop.wait(0.1):
                return

    def largest(self, *, besides: int) -> float:
        return max((mb for pid, mb in self.peaks.items() if pid != besides), default=0.0)


def bench_settings(url: str, processes: int = 0) -> Settings:
    golden = golden_settings()
    return Settings.model_validate(
        {
            "database_url": url,
            "organisation": golden.organisation.model_dump(),
            "lists": [{"slug": LIST, "name": "Weekly", "kind": "digest"}],
            "delivery": {
                "base_url": golden.delivery.base_url,
                "from_email": "digest@harborcitydpc.example.org",
                "batch_size": 1000,
                "concurrency": 4,
                "processes": processes,
            },
        }
    )


# -- the data ----------------------------------------------------------------------------


def populate(settings: Settings, engine: Engine, n: int) -> None:
    """N active subscribers p{i}@example.org on the digest list; one in ten wants text."""
    with engine.begin() as conn:
        audience.sync_lists(conn, settings.lists)
        for start in range(0, n, CHUNK):
            ids = range(start, min(n, start + CHUNK))
            conn.execute(
                sa.insert(subscribers),
                [
                    {
                        "id": i + 1,
                        "email": f"p{i}@example.org",
                        "email_key": f"p{i}@example.org",
                        "name": f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}",
                        "status": "active",
                        "source": "bench",
                        "created": NOW,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                sa.insert(memberships),
                [
                    {
                        "subscriber_id": i + 1,
                        "list_slug": LIST,
                        "status": "active",
                        "format": "text" if i % 10 == 9 else "html",
                        "created": NOW,
                    }
                    for i in ids
                ],
            )
    settle(engine)


def settle(engine: Engine) -> None:
    """On PostgreSQL, what its autovacuum and checkpointer would have done long before a
    weekly send to subscribers who joined over months: statistics gathered, the new rows'
    visibility settled and their pages written. Without it, the plan just after
    populating pays for a million rows' hint bits and a checkpoint of the populate's WAL.
    (SQLite has neither to do.)"""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
        conn.exec_driver_sql("CHECKPOINT")


def edition_and_email(settings: Settings) -> tuple[Edition, RenderedEmail]:
    """The golden edition grown to 20 news items and 5 stories: about 49 KB of HTML."""
    base = golden_edition()
    news = tuple(
        _article(i, f"News story number {i}: “quotes” & ampersands", SUMMARY * 3)
        for i in range(1, 21)
    )
    stories = tuple(_article(i, f"Story {i}", SUMMARY * 2, "stories") for i in range(1, 6))
    sections = (
        replace(base.sections[0], items=news),
        replace(base.sections[1], items=stories),
        *base.sections[2:],
    )
    edition = replace(base, sections=sections)
    return edition, render_email(edition, settings)


# -- the fake SendGrid in its own process ------------------------------------------------


class FakeProcess:
    """bench/fake_server.py: its URL from the first line, counts on request."""

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE), "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise RuntimeError(f"the fake SendGrid did not start (said {self.url!r})")

    def counts(self) -> dict[str, Any]:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return result

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- measuring inside the worker threads -------------------------------------------------


class Meter:
    """Seconds per stage, summed per thread and handed over per batch by ``on_batch``."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.per_batch: list[dict[str, float]] = []
        self.recipients = 0
        self.kinds: Counter[str] = Counter()
        self.first_at: float | None = None  # perf_counter of the first batch's outcome

    def acc(self) -> dict[str, float]:
        acc: dict[str, float] | None = getattr(self._local, "acc", None)
        if acc is None:
            acc = self._local.acc = dict.fromkeys(STAGES, 0.0)
        return acc

    def add(self, stage: str, seconds: float) -> None:
        self.acc()[stage] += seconds

    def timed(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - start)

        return wrapper

    def on_batch(self, seq: int, outcome: Outcome, size: int) -> None:
        acc = self.acc()
        self._local.acc = None
        with self._lock:
            if self.first_at is None:
                self.first_at = time.perf_counter()
            self.per_batch.append(acc)
            self.recipients += size
            self.kinds[outcome.kind] += 1


class TimedEngine:
    """The engine, with the time spent inside each ``begin()``/``connect()`` block metered."""

    def __init__(self, engine: Engine, meter: Meter) -> None:
        self._engine, self._meter = engine, meter

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        start = time.perf_counter()
        try:
            with self._engine.begin() as conn:
                yield conn
        finally:
            self._meter.add("ledger", time.perf_counter() - start)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        start = time.perf_counter()
        try:
            with self._engine.connect() as conn:
                yield conn
        finally:
            self._meter.add("ledger", time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class TimedTransport:
    """The SendGrid transport, with each ``send`` metered."""

    def __init__(self, inner: Transport, meter: Meter) -> None:
        self.inner, self.name = inner, inner.name
        self._send = meter.timed(inner.send, "send")

    def send(self, batch: OutgoingBatch) -> Outcome:
        outcome: Outcome = self._send(batch)
        return outcome

    def new_schedule(self) -> str:
        return self.inner.new_schedule()

    def cancel_schedule(self, schedule: str) -> None:
        self.inner.cancel_schedule(schedule)


@contextmanager
def instrumented(meter: Meter) -> Iterator[None]:
    """Meter build_payload, encode_payload (JSON) and run._attempt (links = the rest)."""
    attempt = run_module._attempt

    def timed_attempt(*args: Any) -> Any:
        acc = meter.acc()
        ledger0, send0, start = acc["ledger"], acc["send"], time.perf_counter()
        try:
            return attempt(*args)
        finally:
            took = time.perf_counter() - start
            acc["links"] += took - (acc["ledger"] - ledger0) - (acc["send"] - send0)

    patches = [
        (run_module, "_attempt", timed_attempt),
        (sendgrid_module, "build_payload", meter.timed(sendgrid_module.build_payload, "build")),
        (
            sendgrid_module,
            "encode_payload",
            meter.timed(sendgrid_module.encode_payload, "json"),
        ),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, value in patches:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def per_batch_medians(meter: Meter) -> dict[str, float]:
    """Median milliseconds per batch of each stage; HTTP is send minus build and JSON."""
    rows = [
        {
            "links": b["links"],
            "build": b["build"],
            "json": b["json"],
            "http": b["send"] - b["build"] - b["json"],
            "ledger": b["ledger"],
            "cycle": sum(b.values()),
        }
        for b in meter.per_batch
    ]
    if not rows:
        return {}
    return {k: statistics.median(r[k] for r in rows) * 1000 for k in rows[0]}


def fake_ceiling_ms(url: str, settings: Settings, plan: Any) -> float:
    """The fake's own ceiling: milliseconds per request of one batch's bytes, posted one
    after another on one connection (median; after the counts, so they are not counted)."""
    people = [
        Recipient(i, f"ceiling{i}@example.org", "Ana Lima", "html", (LIST,))
        for i in range(settings.delivery.batch_size)
    ]
    maker = LinkMaker.at(
        settings, keyring(SECRET_KEY, None, settings.var_dir, may_create=False), NOW
    )
    addressees = [Addressee(p, LIST, maker.links(p.id, LIST)) for p in people]
    batch = OutgoingBatch(plan.edition.id, 1, "html", plan.edition.email, addressees)
    data = sendgrid_module.encode_payload(sendgrid_module.build_payload(settings, batch))
    host = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=30)
    headers = {"Authorization": "Bearer SG.bench-key", "Content-Type": "application/json"}
    times = []
    for _ in range(CEILING_POSTS):
        start = time.perf_counter()
        conn.request("POST", "/v3/mail/send", body=data, headers=headers)
        conn.getresponse().read()
        times.append(time.perf_counter() - start)
    conn.close()
    return statistics.median(times) * 1000


# -- one representative batch, single-threaded -------------------------------------------


def micro(
    settings: Settings, engine: Engine, edition_id: str, email: RenderedEmail
) -> dict[str, Any]:
    """Read, personalise, build and encode the first batch as ``_attempt`` does; medians.
    Run after the delivery (outside its timing): the batch is made pending again, claimed
    and read in a transaction rolled back."""
    keys = keyring(SECRET_KEY, None, settings.var_dir, may_create=False)
    times: dict[str, list[float]] = {"read": [], "links": [], "build": [], "json": []}
    size = count = 0
    first = (batches.c.edition_id == edition_id) & (batches.c.seq == 1)
    for _ in range(MICRO_REPEAT):
        with engine.connect() as conn:
            conn.execute(sa.update(batches).where(first).values(state=ledger.PENDING))
            t0 = time.perf_counter()
            claimed = ledger.claim(conn, edition_id, "bench", NOW)
            assert claimed is not None
            rows = ledger.batch_recipients(conn, claimed.id)
            t1 = time.perf_counter()
            conn.rollback()
        people = LedgerPeople(rows, LinkMaker.at(settings, keys, NOW), format_of(claimed.variant))
        people.links()  # alone, for its column: build_payload makes them again
        batch = OutgoingBatch(edition_id, claimed.seq, claimed.variant, email, people)
        t2 = time.perf_counter()
        body = sendgrid_module.build_payload(settings, batch)  # with the links
        t3 = time.perf_counter()
        data = sendgrid_module.encode_payload(body)
        t4 = time.perf_counter()
        for key, took in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[key].append(took)
        size, count = len(data), len(rows)
    out: dict[str, Any] = {k: statistics.median(v) * 1000 for k, v in times.items()}
    out.update(payload_kb=size / 1024, batch_size=count, variant=batch.variant)
    return out


# -- one case, in its own process --------------------------------------------------------


def run_case(
    n: int, latency: float, database_url: str, processes: int, kept: str
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-dispatch-"))
    try:
        return _run_case(folder, n, latency, database_url, processes, Path(kept))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def subscribers_stored(
    settings: Settings, engine: Engine, n: int, folder: Path, stored: Path
) -> Engine:
    """N subscribers in the case's SQLite file: copied from the first case of this N (the
    next latencies reuse its 1,000,000, a minute saved each), else populated and kept."""
    if settings.database_url.startswith("postgresql") or not stored.name:
        populate(settings, engine, n)
        return engine
    kept = stored / f"{n}.db"
    engine.dispose()
    if kept.exists():
        shutil.copyfile(kept, folder / "bench.db")
    else:
        engine = open_engine(settings.database_url, folder)
        populate(settings, engine, n)
        engine.dispose()
        shutil.copyfile(folder / "bench.db", kept)
    return open_engine(settings.database_url, folder)


def fresh_database(folder: Path, database_url: str) -> str:
    """A fresh SQLite file in ``folder``; or the PostgreSQL database given, emptied."""
    if not database_url:
        return f"sqlite:///{folder / 'bench.db'}"
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return database_url


def _run_case(
    folder: Path, n: int, latency: float, database_url: str, processes: int, kept: Path
) -> dict[str, Any]:
    result: dict[str, Any] = {"n": n, "latency": latency, "rss_start": peak_rss_mb()}
    settings = bench_settings(fresh_database(folder, database_url), processes)
    result["database"] = "postgresql" if database_url else "sqlite"
    engine = open_engine(settings.database_url, folder)
    start = time.perf_counter()
    engine = subscribers_stored(settings, engine, n, folder, kept)
    edition, email = edition_and_email(settings)
    with engine.begin() as conn:
        save_edition(conn, edition, email, NOW, kind=Kind.WEEKLY)
        stored = find_edition(conn, edition.id)
    result.update(setup_s=time.perf_counter() - start, rss_setup=peak_rss_mb())
    result["html_kb"] = len(email.html.encode()) / 1024
    log(f"  [{n:,} @ {latency}s] {n:,} subscribers stored in {result['setup_s']:.1f} s")

    result.update(_send(settings, engine, stored, latency, n))
    result["micro"] = micro(settings, engine, edition.id, result.pop("email"))
    with engine.connect() as conn:
        result["ledger"] = ledger.summary(conn, edition.id)
    engine.dispose()
    return result


def _send(
    settings: Settings, engine: Engine, stored: StoredEdition, latency: float, n: int
) -> dict[str, Any]:
    """The send as digest/lifecycle/sending.py runs it: the transport (the fake) first, the
    plan inside :class:`WorkersAhead` (the worker processes start while it runs), then
    ``deliver`` with them; the plan and the delivery timed one by one."""
    fake = FakeProcess(latency)
    try:
        secrets = Secrets(
            sendgrid_api_key="SG.bench-key", secret_key=SECRET_KEY, sendgrid_host=fake.url
        )
        meter = Meter()
        with ChildPeaks() as children:
            out = _plan_and_deliver(
                settings, engine, secrets, stored, meter, f"[{n:,} @ {latency}s]"
            )
        plan = out.pop("plan")
        out.update(rss_delivery=peak_rss_mb(), load=os.getloadavg()[0])
        out["rss_workers"] = children.largest(besides=fake.proc.pid)
        out["rss_fake"] = max(children.peaks.get(fake.proc.pid, 0.0), peak_rss_mb(fake.proc.pid))
        counts = fake.counts()
        ceiling = fake_ceiling_ms(fake.url, settings, plan)
    finally:
        fake.close()
    return {
        **out,
        "email": plan.edition.email,
        "ceiling_ms": ceiling,
        "processes": process_count(settings, plan.new_batches, "sendgrid"),
        "batches": len(meter.per_batch),
        "delivered": meter.recipients,
        "stages": per_batch_medians(meter),
        "fake": counts,
    }


def _plan_and_deliver(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    stored: StoredEdition,
    meter: Meter,
    case: str,
) -> dict[str, Any]:
    """``plan_send`` inside :class:`WorkersAhead`, then ``deliver`` with its workers: the
    plan's seconds, the delivery's, and from the delivery's start to its first outcome."""
    planner = App(settings, engine, secrets, lambda: NOW)
    ahead_app = App(settings, engine, secrets, lambda: datetime.now(UTC))
    ctx = App(
        settings,
        TimedEngine(engine, meter),  # type: ignore[arg-type]
        secrets,
        lambda: datetime.now(UTC),
    )
    transport = TimedTransport(ctx.transport(), meter)
    slugs = lists_for(planner, stored, None)
    start = time.perf_counter()
    with WorkersAhead(ahead_app, stored.id, slugs, transport.name, datetime.now(UTC)) as ahead:
        plan = plan_send(planner, stored, slugs, transport="sendgrid", now=NOW, dry_run=False)
        plan_s, rss_plan = time.perf_counter() - start, peak_rss_mb()
        log(f"  {case} planned {plan.new_batches} batches in {plan_s:.1f} s")
        # The workers' CPU is counted whole (they are reaped as the delivery ends), their
        # imports while it planned too, as when they started with the delivery.
        cpu0, start = cpu_seconds(), time.perf_counter()
        with instrumented(meter):
            report = deliver(ctx, plan, transport, on_batch=meter.on_batch, ahead=ahead)
        took, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    first = None if meter.first_at is None else meter.first_at - start
    said = "no outcome" if first is None else f"its first outcome {first:.2f} s after its start"
    log(f"  {case} delivered {len(meter.per_batch)} batches in {took:.1f} s ({said})")
    return {
        "plan": plan,
        "plan_s": plan_s,
        "rss_plan": rss_plan,
        "planned": sum(plan.new_recipients.values()),
        "planned_batches": plan.new_batches,
        "delivery_s": took,
        "first_outcome_s": first,
        "cpu_s": cpu,
        "outcomes": dict(report.outcomes),
        "stopped_by": report.stopped_by,
    }


def verdict(r: dict[str, Any]) -> list[str]:
    """What is wrong with a case's outcome (nothing, when the fake and ledger agree with N)."""
    n, fake, led = r["n"], r["fake"], r["ledger"]
    problems = []
    if fake["distinct"] != n or fake["personalizations"] != n:
        problems.append(
            f"fake accepted {fake['personalizations']:,} personalizations, "
            f"{fake['distinct']:,} distinct, for {n:,}"
        )
    if fake["duplicates"]:
        problems.append(f"{fake['duplicates']:,} addresses accepted more than once")
    if fake["errors"]:
        problems.append(f"fake errors: {fake['errors']}")
    if led["recipients"]["accepted"] != n or r["delivered"] != n:
        problems.append(f"ledger: {led['recipients']}, batches {led['batches']}")
    if r["outcomes"].get("accepted", 0) != r["batches"] or r["batches"] != r["planned_batches"]:
        problems.append(f"outcomes {r['outcomes']} of {r['planned_batches']} planned batches")
    return problems


# -- the parent: one child per case, then the table ---------------------------------------


def run_child(
    n: int, latency: float, database_url: str, processes: int, stored: Path
) -> dict[str, Any] | None:
    # Run as ``-c``, not as a script: a spawned worker process imports its parent's main
    # script again (as ``__mp_main__``), and this one imports far more than a worker does
    # (``digest send``'s own script imports digest.cli alone, 17 MB).
    here = str(Path(__file__).resolve().parent)
    start = f"import sys; sys.path.insert(0, {here!r}); import dispatch; dispatch.main()"
    cmd = [sys.executable, "-c", start, "--one", str(n), str(latency)]
    cmd += ["--database-url", database_url, "--processes", str(processes)]
    cmd += ["--stored", str(stored)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return result
    log(f"  case {n:,} @ {latency}s failed (exit {done.returncode})")
    return None


def print_tables(results: list[dict[str, Any]]) -> None:
    print(
        "| database | recipients | latency s | plan s | delivery s "
        "| delivery's start to its first outcome s | plan + delivery s "
        "| recipients/s | batches | processes | ms/batch wall | fake ceiling ms/batch "
        "| wall ÷ ceiling | in a worker, ms/batch: links + build + JSON | HTTP | ledger "
        "| CPU ms/batch | peak RSS MB: sending process, largest worker | fake: accepted once |"
    )
    print("|---|" + "---:|" * 17 + "---|")
    for r in results:
        s, b = r["stages"], max(1, r["batches"])
        ok = "yes" if not verdict(r) else "NO: " + "; ".join(verdict(r))
        inside = (
            f"{s['links']:.1f} + {s['build']:.1f} + {s['json']:.1f} | {s['http']:.1f} "
            f"| {s['ledger']:.1f}"
            if r["processes"] == 1 and s
            else "(in the worker processes) | | "
        )
        wall = r["delivery_s"] / b * 1000
        first = "-" if r["first_outcome_s"] is None else f"{r['first_outcome_s']:.2f}"
        print(
            f"| {r['database']} | {r['n']:,} | {r['latency']:g} | {r['plan_s']:.1f} "
            f"| {r['delivery_s']:.1f} | {first} | {r['plan_s'] + r['delivery_s']:.1f} "
            f"| {r['n'] / r['delivery_s']:,.0f} | {r['batches']} | {r['processes']} "
            f"| {wall:.1f} | {r['ceiling_ms']:.1f} | {wall / r['ceiling_ms']:.2f} "
            f"| {inside} | {r['cpu_s'] / b * 1000:.1f} "
            f"| {r['rss_delivery']:.0f}, {r.get('rss_workers', 0):.0f} "
            f"(the fake: {r.get('rss_fake', 0):.0f}) | {ok} |"
        )
    print(
        f"\nBefore issue 18 (1,000,000, SQLite, latency 0, threads only): plan "
        f"{BEFORE['plan_s']} s + delivery {BEFORE['delivery_s']} s = "
        f"{BEFORE['plan_s'] + BEFORE['delivery_s']:.1f} s, peak RSS {BEFORE['rss_mb']:.0f} MB"
    )
    print(
        "\nOne batch of 1000, single-threaded (medians of 5): ledger read, links, "
        "build_payload, encode_payload; RSS after each phase\n"
    )
    print(
        "| recipients | latency s | setup s | read ms | links ms | build ms (with links) | JSON ms "
        "| payload KB | RSS MB after imports / setup / plan / delivery | load avg after |"
    )
    print("|" + "---:|" * 10)
    for r in results:
        m = r["micro"]
        print(
            f"| {r['n']:,} | {r['latency']:g} | {r['setup_s']:.1f} | {m['read']:.1f} "
            f"| {m['links']:.1f} | {m['build']:.1f} | {m['json']:.1f} | {m['payload_kb']:.0f} "
            f"| {r['rss_start']:.0f} / {r['rss_setup']:.0f} / {r['rss_plan']:.0f} "
            f"/ {r['rss_delivery']:.0f} | {r['load']:.1f} |"
        )


def check_targets(results: list[dict[str, Any]]) -> list[str]:
    verdicts = []
    for r in results:
        if r["n"] != DELIVERY_TARGET_N or r["latency"] != 0:
            continue
        took, target = r["plan_s"] + r["delivery_s"], TARGET_S[r["database"]]
        word = "PASS" if took < target else "OVER"
        verdicts.append(
            f"{word}: 1,000,000 on {r['database']} planned and delivered in {took:.1f} s "
            f"(target {target:.0f} s; before {BEFORE['plan_s'] + BEFORE['delivery_s']:.1f} s)"
        )
    if not verdicts:
        verdicts.append("1,000,000 at latency 0 not run")
    rss = max(max(r["rss_delivery"], r.get("rss_workers", 0)) for r in results)
    word = "PASS" if rss < RSS_TARGET_MB else "OVER"
    verdicts.append(
        f"{word}: peak RSS of one process {rss:.0f} MB (target {RSS_TARGET_MB:.0f} MB; "
        f"before {BEFORE['rss_mb']:.0f} MB; the sending process's includes this bench's "
        "own rendering of the edition)"
    )
    for latency in sorted({r["latency"] for r in results}):
        same = sorted((r for r in results if r["latency"] == latency), key=lambda r: r["n"])
        if len(same) < 2:
            continue
        small, large = same[0], same[-1]
        growth = large["rss_delivery"] / small["rss_delivery"] - 1
        word = "PASS" if growth <= RSS_FLAT else "OVER"
        verdicts.append(
            f"{word}: RSS flat at latency {latency:g} s ({large['n']:,}: "
            f"{large['rss_delivery']:.0f} MB vs {small['n']:,}: {small['rss_delivery']:.0f} MB, "
            f"{growth:+.0%})"
        )
    bad = sum(1 for r in results if verdict(r))
    verdicts.append("every address accepted exactly once" if not bad else f"{bad} cases WRONG")
    return verdicts


def sending_arguments(doc: str) -> argparse.ArgumentParser:
    """The arguments this bench and bench/plan.py share, with the environment's settings
    cleared: the settings come from the script only."""
    for name in list(os.environ):
        if name.startswith(("DIGEST_", "SENDGRID_")):
            del os.environ[name]
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--recipients", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--database-url", default="", help="a throwaway PostgreSQL database")
    return parser


def main() -> None:
    parser = sending_arguments(__doc__ or "")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--processes", type=int, default=0, help="0: one per core")
    parser.add_argument("--one", nargs=2, metavar=("N", "LATENCY"), help=argparse.SUPPRESS)
    parser.add_argument("--stored", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = run_case(
            int(args.one[0]), float(args.one[1]), args.database_url, args.processes, args.stored
        )
        print("RESULT " + json.dumps(result, default=str), flush=True)
        return
    print(
        f"{'PostgreSQL' if args.database_url else 'SQLite'}, batches of 1000, 4 threads, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n",
        flush=True,
    )
    results = []
    stored = Path(tempfile.mkdtemp(prefix="digest-bench-subscribers-"))
    try:
        for n in args.recipients:
            for latency in args.latency:
                log(f"case: {n:,} recipients, fake latency {latency} s")
                outcome = run_child(n, latency, args.database_url, args.processes, stored)
                if outcome is not None:
                    results.append(outcome)
    finally:
        shutil.rmtree(stored, ignore_errors=True)
    if not results:
        sys.exit("no case finished")
    print_tables(results)
    print("\nTargets: " + "; ".join(check_targets(results)))


if __name__ == "__main__":
    main()
