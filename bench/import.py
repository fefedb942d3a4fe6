"""Import and export of many subscribers: seconds, rows per second and peak memory.

Run from the repository root: ``python bench/import.py [--rows 100000]
[--database-url URL]`` (or ``make bench``). Generates a CSV of invented
example.org addresses, imports it into a fresh database (SQLite in a temporary
folder; with a PostgreSQL --database-url, a new database on that server, dropped
afterwards), exports it, then re-imports the export. Prints a Markdown table and checks
the targets: an import under 4 s on SQLite and under 5 s on PostgreSQL, export under
5 s, peak RSS under 200 MB.

Timings on a shared 2-core machine are noisy, so each figure is printed beside two
baselines measured in the same run (their medians of 3): parsing the same CSV with the
csv module alone, and starting ``python -c "import digest"``. The "x csv" column is a
figure over the csv baseline, which compares across machines and loads; "CPU s" is
this process's CPU time, steadier than the wall clock when other jobs share the cores;
"server CPU s" is the PostgreSQL server's (every process of it, from /proc: a server on
this machine that the bench may read, as scripts/with-postgres starts; "-" otherwise),
and this process's and the server's together are most of an import's seconds on a quiet
machine; "before" is the same step measured before the issue-18 work (see BEFORE);
"RSS MB" is the peak so far.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.audience.export import export_csv
from digest.audience.importer import import_csv
from digest.config import Settings
from digest.context import App
from digest.store import open_engine

ROOT = Path(__file__).resolve().parents[1]
IMPORT_TARGET = {"sqlite": 4.0, "postgresql": 5.0}  # seconds, an import of 100,000 rows
EXPORT_TARGET = 5.0
RSS_TARGET_MB = 200.0
# Before the issue-18 work (commit 5c94fe6), measured on this 2-core machine on
# 2026-12-01 between 21:21 and 22:00 UTC, with other engineers' jobs running (load
# average 3 to 9): three runs of this bench's earlier version with 100,000 rows, the
# median of each figure. SQLite: a fresh folder each run. PostgreSQL: a fresh server
# from scripts/with-postgres each run. Seconds; peak RSS in MB. The CPU seconds came
# later (22:00-22:05 UTC, load average 8 to 9): this version of the bench run on a copy
# of that commit three times, in turn with three runs of the new code (whose CPU
# seconds were 6.53, 4.49 and 3.18, medians, while the old code's were these).
BEFORE = {
    "sqlite": {"import": 21.30, "export": 4.84, "re-import of the export": 15.38, "rss": 180},
    "postgresql": {
        "import": 31.40, "export": 13.34, "re-import of the export": 72.66, "rss": 195,
    },
}  # fmt: skip
BEFORE_CPU = {"sqlite": {"import": 18.16, "export": 4.39, "re-import of the export": 14.64}}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FIRST = ["Ana", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "José", "Zoë"]
LAST = ["Lima", "Okonkwo", "Ramírez", "Müller", "Nguyen", "O'Brien", "Smith", "=SUM(1)"]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(48)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,first name,last name,format\n")
        for i in range(rows):
            fmt = "text" if i % 10 == 0 else "html"
            fh.write(f"person.{i}@example.org,{rng.choice(FIRST)},{rng.choice(LAST)},{fmt}\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_of_3(measure: Callable[[], float]) -> float:
    return float(statistics.median(measure() for _ in range(3)))


def csv_parse_seconds(path: Path) -> float:
    """The floor: reading the file with the csv module and nothing else."""
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as fh:
        for _ in csv.reader(fh):
            pass
    return time.perf_counter() - start


def startup_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import digest"], cwd=ROOT, check=True)
    return time.perf_counter() - start


def fresh_database(url: str) -> tuple[str, sa.Engine | None, str | None]:
    """The URL to bench on: PostgreSQL gets a new database on the same server, so a run
    never finds the previous run's rows; the admin engine and its name, to drop it."""
    parsed = sa.make_url(url)
    if not parsed.get_backend_name().startswith("postgresql"):
        return url, None, None
    name = f"digest_bench_{uuid4().hex[:12]}"
    admin = sa.create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False), admin, name


def server_cpu(engine: sa.Engine) -> Callable[[], float | None]:
    """The CPU seconds so far of the PostgreSQL server behind ``engine``: its postmaster's
    and every child's (a backend that has exited is in the postmaster's children's
    times); a reader giving None for SQLite or a server whose /proc the bench cannot read."""
    if engine.dialect.name != "postgresql":
        return lambda: None
    try:
        with engine.connect() as conn:
            data = Path(str(conn.exec_driver_sql("SHOW data_directory").scalar()))
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (sa.exc.DBAPIError, OSError, ValueError):
        return lambda: None
    tick = os.sysconf("SC_CLK_TCK")

    def seconds() -> float | None:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # utime, stime, cutime, cstime after the command's ")": fields 14 to 17
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a process that ended meanwhile
            if postmaster in (int(stat.parent.name), int(fields[1])):
                total += sum(int(f) for f in fields[11:15])
        return total / tick

    return seconds if seconds() else lambda: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-import-"))
    url, admin, made = fresh_database(args.database_url or f"sqlite:///{folder / 'bench.db'}")
    try:
        run(args.rows, url, folder)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{made}" WITH (FORCE)')


def run(rows: int, url: str, folder: Path) -> None:
    settings = Settings.model_validate(
        {"database_url": url, "lists": [{"slug": "weekly", "name": "Weekly"}]}
    )
    engine = open_engine(settings.database_url, folder)
    dialect = engine.dialect.name
    source = folder / "people.csv"
    generate(source, rows)
    parse = median_of_3(lambda: csv_parse_seconds(source))
    startup = median_of_3(startup_seconds)
    print(
        f"{rows:,} rows, {source.stat().st_size / 1e6:.1f} MB CSV, {dialect}, "
        f"Python {sys.version.split()[0]}\n\nBaselines (medians of 3): csv module alone "
        f"{parse:.3f} s; python -c 'import digest' {startup:.3f} s\n"
    )

    served = server_cpu(engine)

    def measured(step: Callable[[], str]) -> tuple[float, float, float | None, str]:
        """The step's seconds, this process's CPU seconds, the server's, and its note."""
        start, cpu, server = time.perf_counter(), time.process_time(), served()
        note = step()
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = served()
        return took, cpu, None if server is None or after is None else after - server, note

    def run_import(path: Path) -> str:
        report = import_csv(
            App(settings, engine),
            path,
            list_slug="weekly",
            default_format=None,
            pending=False,
            dry_run=False,
            now=NOW,
        )
        return (
            f"added {report.added}, unchanged {report.unchanged}, rejected {len(report.rejected)}"
        )

    out = io.StringIO()

    def run_export() -> str:
        count = export_csv(App(settings, engine), out, list_slug="weekly", status=None)
        return f"{count} rows"

    results: list[Result] = []
    results.append(("import", *measured(lambda: run_import(source)), peak_rss_mb()))
    results.append(("export", *measured(run_export), peak_rss_mb()))
    exported = folder / "export.csv"
    exported.write_text(out.getvalue(), encoding="utf-8")
    out.close()  # its text is in the file now
    again = measured(lambda: run_import(exported))
    results.append(("re-import of the export", *again, peak_rss_mb()))
    engine.dispose()
    report(dialect, rows, parse, results)


# step, seconds, CPU seconds of this process, of the server (None: not measured), what it
# did, peak RSS so far
Result = tuple[str, float, float, float | None, str, float]


def report(dialect: str, rows: int, parse: float, results: list[Result]) -> None:
    before = BEFORE.get(dialect, {}) if rows == 100_000 else {}
    before_cpu = BEFORE_CPU.get(dialect, {}) if rows == 100_000 else {}
    targets = {"import": IMPORT_TARGET.get(dialect), "export": EXPORT_TARGET}
    targets["re-import of the export"] = targets["import"]
    print(
        "| step | seconds | x csv | CPU s | server CPU s | rows/s | before s | before CPU s "
        "| target | verdict | result | RSS |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|"
    )
    for name, seconds, cpu, server, note, rss in results:
        target = targets.get(name)
        verdict = "" if target is None else ("PASS" if seconds < target else "OVER")
        was = f"{before[name]:.2f}" if name in before else "-"
        was_cpu = f"{before_cpu[name]:.2f}" if name in before_cpu else "-"
        print(
            f"| {name} | {seconds:.2f} | {seconds / parse:.0f} | {cpu:.2f} "
            f"| {'-' if server is None else f'{server:.2f}'} | {rows / seconds:,.0f} "
            f"| {was} | {was_cpu} "
            f"| {f'< {target:.0f} s' if target else '-'} | {verdict} | {note} | {rss:.0f} |"
        )
    rss = max(r[5] for r in results)
    was = f" (before: {before['rss']} MB)" if "rss" in before else ""
    verdict = "PASS" if rss < RSS_TARGET_MB else "OVER"
    print(f"\nPeak RSS {rss:.0f} MB{was}: {verdict} (target < {RSS_TARGET_MB:.0f} MB)")
    if rows != 100_000:
        print("(the targets and the before column are for 100,000 rows)")


if __name__ == "__main__":
    main()
