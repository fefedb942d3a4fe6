"""The web app under load on loopback: the one-click unsubscribe POST, against a baseline.

Run from the repository root: ``python bench/web.py [--seconds 10] [--clients 8]
[--runs 3] [--workers N]`` (or ``make bench``). Builds a SQLite project in a temporary
folder (subscribers, one sent edition), starts ``digest serve`` on it in its own process
(the scheduler too, as in production), and drives it from this process with keep-alive
HTTP/1.1 clients on one asyncio loop (a few microseconds a request, so the figure is the
server's, not the client's). Every unsubscribe goes to a different subscriber, so each one
writes to the database.

Each request is measured ``--runs`` times on the same server, interleaved, and the table
gives the medians. The baseline is ``GET /u/<token>``: the same route, middleware and page
without the database write; the unsubscribe's figure divided by it compares across
machines. Each row also gives the server's CPU time per request (every process of it,
from /proc), which a busy machine disturbs less than the wall-clock figures. The last
lines say PASS or OVER against the target, show the figure measured before the work on
issue 18, with this bench, and check in the database that every unsubscribe posted to
was stored, once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.audience.tokens import Keyring
from digest.config import load_settings
from digest.lifecycle.states import Kind, State, store_edition, transition
from digest.store import open_engine
from tests.conftest import import_people
from tests.golden_edition import golden_edition, render_golden

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-web-secret-key-0123456789"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TARGET_RPS, TARGET_P99_MS = 1000, 50
UNSUBSCRIBE, BASELINE = "POST /u/<token> (one-click)", "GET /u/<token> (baseline)"
# Before the work on issue 18 (commit 2178b88): this bench, run on 2026-12-01 21:52-21:55
# UTC on the 2-core build machine (shared, loaded), with --root pointing at a copy of that
# commit's tree, 8 clients, 3 runs of 10 s, medians.
BEFORE = {"rps": 77, "p99": 218.9, "baseline_rps": 480}
CONFIG = """
database_url = "sqlite:///bench.db"
[organisation]
name = "Bench Coalition"
postal_address = "PO Box 1, Testville, NY 10001"
website = "https://coalition.example.org"
[delivery]
from_email = "news@coalition.example.org"
base_url = "http://127.0.0.1:{port}"
[[lists]]
slug = "weekly"
name = "Weekly"
kind = "digest"
"""
ONE_CLICK = b"List-Unsubscribe=One-Click"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(folder: Path, port: int, subscribers: int) -> list[str]:
    """The project, its subscribers and a sent edition; the unsubscribe paths, one each."""
    (folder / "config.toml").write_text(CONFIG.format(port=port))
    settings = load_settings(folder / "config.toml")
    engine = open_engine(settings.database_url, settings.base_dir)
    people = folder / "people.csv"
    people.write_text("email\n" + "".join(f"p{i}@example.org\n" for i in range(subscribers)))
    import_people(settings, engine, people)
    with engine.begin() as conn:
        edition = golden_edition()
        store_edition(conn, edition, render_golden(), kind=Kind.WEEKLY, who="bench", now=NOW)
        for state in (State.SENDING, State.SENT):  # a sent edition, for the archive pages
            transition(conn, edition.id, state, who="bench", now=NOW)
    engine.dispose()
    keys = Keyring(KEY.encode())
    return [
        f"/u/{keys.make('unsubscribe', i, 'weekly', now=NOW)}" for i in range(1, subscribers + 1)
    ]


def request_bytes(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if method == "POST":
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def one_client(
    port: int, stop: float, make: Callable[[int], bytes], counter: list[int], times: list[float]
) -> int:
    """Requests one after another on one keep-alive connection; the unexpected answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    try:
        while time.perf_counter() < stop:
            counter[0] += 1
            started = time.perf_counter()
            writer.write(make(counter[0]))
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            times.append(time.perf_counter() - started)
            errors += head[9:12] != b"200"
    finally:
        writer.close()
    return errors


@dataclass(frozen=True, slots=True)
class Figure:
    rps: float
    p50: float
    p99: float
    slowest: float
    errors: int
    cpu_us: float  # the server's CPU time (every process of it) per request, microseconds


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server and its worker processes (Linux's /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, family = 0, {pid}
    for stat in sorted(Path("/proc").glob("[0-9]*/stat"), key=lambda p: int(p.parent.name)):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(stat.parent.name) in family or int(fields[1]) in family:
            family.add(int(stat.parent.name))
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


async def drive(
    port: int, seconds: float, clients: int, make: Callable[[int], bytes], pid: int
) -> Figure:
    times: list[float] = []
    cpu = server_cpu(pid)
    began = time.perf_counter()
    counter = [0]
    found = await asyncio.gather(
        *(one_client(port, began + seconds, make, counter, times) for _ in range(clients))
    )
    wall = time.perf_counter() - began
    cpu = server_cpu(pid) - cpu
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    ms = 1000
    return Figure(
        len(times) / wall,
        statistics.median(times) * ms,
        p99 * ms,
        times[-1] * ms,
        sum(found),
        cpu / len(times) * 1e6,
    )


def wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/archive", timeout=1)
            return
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=100_000)  # > 10 s x 3 of POSTs
    parser.add_argument("--workers", type=int, help="digest serve --workers (default: its own)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the code to serve (a checkout)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-web-"))
    port = free_port()
    paths = prepare(folder, port, args.subscribers)
    env = {**os.environ, "DIGEST_SECRET_KEY": KEY, "PYTHONPATH": str(args.root.resolve())}
    command = [sys.executable, "-m", "digest", "serve", "--config", str(folder / "config.toml")]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(args.workers)] if args.workers else []
    log = folder / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, cwd=folder, stdout=out, stderr=out)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server, log)
        posted = report(args, port, paths, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    check_writes(folder, min(posted, len(paths)))


def check_writes(folder: Path, posted: int) -> None:
    """Every one-click POST answered 200 left its subscriber unsubscribed and suppressed,
    once each, whatever the number of workers: counted in the database after the runs."""
    settings = load_settings(folder / "config.toml")
    engine = open_engine(settings.database_url, settings.base_dir)
    with engine.connect() as conn:
        left = conn.exec_driver_sql(
            "SELECT count(*) FROM memberships WHERE status = 'unsubscribed'"
        ).scalar()
        suppressed = conn.exec_driver_sql("SELECT count(*) FROM suppressions").scalar()
    engine.dispose()
    verdict = "as expected" if left == suppressed == posted else "WRONG"
    print(
        f"stored: {left:,} memberships left and {suppressed:,} addresses suppressed for "
        f"{posted:,} subscribers posted to: {verdict}"
    )


def report(args: argparse.Namespace, port: int, paths: list[str], pid: int) -> int:
    """The table; how many one-click POSTs were sent."""
    nth = iter(range(10**9))
    cases: dict[str, Callable[[int], bytes]] = {
        BASELINE: lambda i: request_bytes("GET", paths[i % len(paths)]),
        UNSUBSCRIBE: lambda i: request_bytes("POST", paths[next(nth) % len(paths)], ONE_CLICK),
        "GET /healthz": lambda i: request_bytes("GET", "/healthz"),
        "GET /archive/2026-W48": lambda i: request_bytes("GET", "/archive/2026-W48"),
    }
    runs: dict[str, list[Figure]] = {name: [] for name in cases}
    for _ in range(args.runs):  # interleaved: a noisy minute spreads over every request
        for name, make in cases.items():
            runs[name].append(asyncio.run(drive(port, args.seconds, args.clients, make, pid)))
    workers = f"--workers {args.workers}" if args.workers else "default workers"
    print(
        f"digest serve ({workers}, SQLite); {args.clients} clients; medians of {args.runs} "
        f"runs of {args.seconds:g} s\n"
    )
    print("| request | req/s | p50 ms | p99 ms | max ms | errors | server CPU µs/req |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    medians = {}
    for name, figures in runs.items():
        m = Figure(*(statistics.median(getattr(f, k) for f in figures) for k in Figure.__slots__))
        medians[name] = m
        print(
            f"| {name} | {m.rps:,.0f} | {m.p50:.1f} | {m.p99:.1f} | {m.slowest:.1f} | "
            f"{sum(f.errors for f in figures)} | {m.cpu_us:,.0f} |"
        )
    now, base = medians[UNSUBSCRIBE], medians[BASELINE]
    verdict = "PASS" if now.rps >= TARGET_RPS and now.p99 < TARGET_P99_MS else "OVER"
    print(
        f"\none-click unsubscribe: {now.rps:,.0f} req/s, p99 {now.p99:.1f} ms; "
        f"{now.rps / base.rps:.2f} x the baseline ({base.rps:,.0f} req/s). Target "
        f">= {TARGET_RPS:,} req/s and p99 < {TARGET_P99_MS} ms: {verdict}"
    )
    if BEFORE["rps"]:
        print(
            f"before issue 18 (2178b88, same bench, this machine): {BEFORE['rps']:,} req/s, "
            f"p99 {BEFORE['p99']:.1f} ms; {BEFORE['rps'] / BEFORE['baseline_rps']:.2f} x its "
            f"baseline ({BEFORE['baseline_rps']:,} req/s)"
        )
    posted = next(nth)
    if posted > len(paths):
        print(f"(unsubscribes wrapped around after {len(paths)}: later ones were repeats)")
    return posted


if __name__ == "__main__":
    main()
