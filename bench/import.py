"""Import and export of many subscribers: rows per second and peak memory.

Run from the repository root: ``python bench/import.py [--rows 100000]
[--database-url URL]`` (or ``make bench``). Generates a CSV of invented
example.org addresses, imports it into a fresh database (SQLite in a temporary
folder unless --database-url), exports it, then re-imports the export. Prints a
Markdown table and checks the targets: import under 10 s, export under 5 s,
peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.audience.export import export_csv
from digest.audience.importer import import_csv
from digest.config import Settings
from digest.context import App
from digest.store import open_engine

TARGETS = {"import": 10.0, "export": 5.0}
RSS_TARGET_MB = 300.0
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-import-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    settings = Settings.model_validate(
        {"database_url": url, "lists": [{"slug": "weekly", "name": "Weekly"}]}
    )
    engine = open_engine(settings.database_url, folder)
    source = folder / "people.csv"
    generate(source, args.rows)
    print(
        f"{args.rows:,} rows, {source.stat().st_size / 1e6:.1f} MB CSV, "
        f"{engine.dialect.name}, Python {sys.version.split()[0]}\n"
    )

    def run_import(path: Path) -> tuple[float, str]:
        start = time.perf_counter()
        report = import_csv(
            App(settings, engine),
            path,
            list_slug="weekly",
            default_format=None,
            pending=False,
            dry_run=False,
            now=NOW,
        )
        took = time.perf_counter() - start
        return took, (
            f"added {report.added}, unchanged {report.unchanged}, rejected {len(report.rejected)}"
        )

    results = []
    took, note = run_import(source)
    results.append(("import", took, note, peak_rss_mb()))
    start = time.perf_counter()
    out = io.StringIO()
    count = export_csv(App(settings, engine), out, list_slug="weekly", status=None)
    results.append(("export", time.perf_counter() - start, f"{count} rows", peak_rss_mb()))
    exported = folder / "export.csv"
    exported.write_text(out.getvalue(), encoding="utf-8")
    took, note = run_import(exported)
    results.append(("re-import of the export", took, note, peak_rss_mb()))

    print("| step | seconds | rows/s | result | peak RSS so far (MB) |")
    print("|---|---:|---:|---|---:|")
    for name, seconds, note, rss in results:
        print(f"| {name} | {seconds:.2f} | {args.rows / seconds:,.0f} | {note} | {rss:.0f} |")
    verdicts = [
        f"{name} {'under' if seconds < TARGETS[name] else 'OVER'} {TARGETS[name]:.0f} s"
        for name, seconds, _, _ in results
        if name in TARGETS
    ]
    rss = max(r[3] for r in results)
    verdicts.append(
        f"peak RSS {'under' if rss < RSS_TARGET_MB else 'OVER'} "
        f"{RSS_TARGET_MB:.0f} MB ({rss:.0f} MB)"
    )
    print("\nTargets: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
