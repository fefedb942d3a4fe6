"""The web app under load on loopback: the one-click unsubscribe POST and the archive page.

Run from the repository root: ``python bench/web.py [--seconds 10] [--clients 8]
[--subscribers 20000]`` (or ``make bench``). Builds a SQLite project in a temporary folder
(subscribers, one sent edition), serves it with uvicorn in its own process (one worker, as
``digest serve`` runs it), and drives it from this process with keep-alive HTTP clients in
threads. Prints a Markdown table: requests, requests per second, p50, p99 and the slowest.
Every unsubscribe goes to a different subscriber, so each one writes to the database.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
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
SERVE = """
import sys, uvicorn
from pathlib import Path
from digest.context import open_app
from digest.web.app import create_app
app = create_app(open_app(Path(sys.argv[1])))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


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
    keys = Keyring(KEY.encode())
    return [
        f"/u/{keys.make('unsubscribe', i, 'weekly', now=NOW)}" for i in range(1, subscribers + 1)
    ]


def drive(
    url: str, seconds: float, clients: int, request: Callable[[httpx.Client, int], int]
) -> tuple[list[float], int, float]:
    """Latencies (s) of every request, the count of unexpected answers, the wall time."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    counter = iter(range(10**9))
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while time.perf_counter() < stop:
                with lock:
                    i = next(counter)
                started = time.perf_counter()
                status = request(http, i)
                latencies[n].append(time.perf_counter() - started)
                errors[n] += status != 200

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for per in latencies for x in per], sum(errors), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--subscribers", type=int, default=20_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-web-"))
    port = free_port()
    paths = prepare(folder, port, args.subscribers)
    env = {**os.environ, "DIGEST_SECRET_KEY": KEY, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(folder / "config.toml"), str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/archive", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        body = {"content": b"List-Unsubscribe=One-Click"}
        form = {"content-type": "application/x-www-form-urlencoded"}
        cases: dict[str, Callable[[httpx.Client, int], int]] = {
            "POST /u/<token> (one-click, first time)": lambda h, i: (
                h.post(paths[i % len(paths)], headers=form, **body).status_code
            ),
            "GET /archive/2026-W48": lambda h, i: h.get("/archive/2026-W48").status_code,
            "GET /archive": lambda h, i: h.get("/archive").status_code,
        }
        print(f"uvicorn, 1 process, SQLite; {args.clients} clients, {args.seconds:g} s each\n")
        print("| request | requests | req/s | p50 ms | p99 ms | max ms | errors |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, request in cases.items():
            times, errors, wall = drive(url, args.seconds, args.clients, request)
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(
                f"| {name} | {len(times)} | {len(times) / wall:,.0f} | "
                f"{statistics.median(times) * 1000:.1f} | {p99 * 1000:.1f} | "
                f"{times[-1] * 1000:.1f} | {errors} |"
            )
        if len(paths) and args.seconds * 2000 > len(paths):
            print(f"\n(unsubscribes wrapped around after {len(paths)}: later ones were repeats)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
