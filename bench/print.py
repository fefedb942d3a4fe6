"""A print run of many paper members: the whole `digest print-run`, its time and peak memory.

Run from the repository root: ``python bench/print.py [--members 500] [--facilities 20]``
(or ``make bench``). Builds a project in a temporary folder from the bundled examples
(collect and build of the examples' week, so a real print PDF of the letter profile, up
to 6 pages, is stored with the edition), puts that many members with mailing addresses
across that many facilities on a print list (directly in the database, no import), then
runs ``digest print-run`` in a child process: its wall time and peak RSS (the child's own,
from ``resource.getrusage(RUSAGE_CHILDREN)``) are checked against the targets, under
30 s and under 300 MB. Then the same steps run once more in this process, timed apart,
to show where the time goes, and the files' pages and sizes.
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pypdf import PdfReader

from digest.audience.addresses import email_key
from digest.build import build
from digest.collect import collect
from digest.config import load_settings
from digest.context import App
from digest.print_run import plan_print_run, write_print_run
from digest.render import mailing as paper
from digest.render.assembly import interleave
from digest.store import open_engine
from digest.store.audience import add_memberships, add_subscribers, sync_lists
from digest.store.mailing import MailingAddress, set_address
from tests.conftest import EXAMPLE_SOURCES

TIME_TARGET_S = 30.0
RSS_TARGET_MB = 300.0
WEEK = "2026-W48"
NOW = datetime(2026, 11, 26, 7, 0, tzinfo=ZoneInfo("America/New_York"))
CONFIG = f"""
[organisation]
name = "Benchmark Coalition"
postal_address = "PO Box 1, Testville, NY 10001"
timezone = "America/New_York"

[delivery]
from_email = "news@example.org"
base_url = "https://digest.example.org"

[[lists]]
slug = "inside"
name = "Inside"
kind = "print"

[print]
default_profile = "letter6"

[[print.profiles]]
name = "letter6"
page_cap = 6

{EXAMPLE_SOURCES.strip()}
"""
FIRST = ["Ana", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "José", "Zoë", "Marisol"]
LAST = ["Lima", "Okonkwo", "Ramírez", "Müller", "Nguyen", "O'Brien", "Smith", "Washington"]
PLACES = ["Correctional Facility", "State Prison", "CF", "Detention Center", "Penitentiary"]


def make_project(folder: Path, members: int, facilities: int) -> Path:
    """config.toml, the examples' week collected and built, members with addresses."""
    config = folder / "config.toml"
    config.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    settings = load_settings(config)
    engine = open_engine(settings.database_url, settings.base_dir)
    collect(settings, engine, NOW)
    build(settings, engine, week=WEEK, out=folder / "built", force=True, now=NOW)
    rng = random.Random(48)
    towns = [(f"Town {n}", rng.choice(["NY", "PA", "CA", "TX"])) for n in range(facilities)]
    with engine.begin() as conn:
        sync_lists(conn, settings.lists)
        rows = [
            {
                "email": f"person.{i}@example.org",
                "email_key": f"person.{i}@example.org",
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "status": "active",
                "source": "bench",
                "created": NOW,
            }
            for i in range(members)
        ]
        assert email_key(rows[0]["email"])[1] == rows[0]["email_key"]
        ids = add_subscribers(conn, rows)
        add_memberships(
            conn,
            [
                {
                    "subscriber_id": sid,
                    "list_slug": "inside",
                    "status": "active",
                    "format": "print",
                    "profile": None,
                    "created": NOW,
                }
                for sid in ids.values()
            ],
        )
        for n, sid in enumerate(ids.values()):
            f = n % facilities
            town, state = towns[f]
            address = MailingAddress(
                inmate_id=f"{rng.randrange(10**7):07d}",
                facility=f"{town} {PLACES[f % len(PLACES)]}",
                unit=rng.choice(["", "B-12", "4", "Dorm C"]),
                address1=f"{100 + f} Route {f + 9}",
                address2="PO Box 500" if f % 3 == 0 else "",
                city=town,
                state=state,
                zip=f"{10000 + f * 37:05d}",
            )
            set_address(conn, sid, address, now=NOW)
    engine.dispose()
    return config


def run_command(config: Path, out: Path) -> tuple[float, float, str]:
    """`digest print-run` in a child process: seconds, the child's peak RSS (MB), output."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "digest", "print-run", WEEK, "--config", str(config)]
    done = subprocess.run(
        [*command, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"digest print-run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return took, rss, done.stdout + done.stderr


def stages(config: Path, out: Path) -> list[tuple[str, float]]:
    """The run's steps in this process, each timed."""
    settings = load_settings(config)
    app = App(settings, open_engine(settings.database_url, settings.base_dir))
    timings = []
    start = time.perf_counter()
    plan = plan_print_run(app, WEEK)
    timings.append(("plan (members, addresses fitted)", time.perf_counter() - start))
    one = plan.profiles[0]
    returned = paper.fit_return(settings.organisation.name, settings.organisation.postal_address)
    pages = [paper.AddressPage(c.window, f"Copy {n} of 500") for n, c in enumerate(one.copies)]
    start = time.perf_counter()
    fronts = paper.address_pages(pages, returned, size=one.sheet, title="bench")
    parts = list(fronts.parts)
    timings.append(("address pages (WeasyPrint)", time.perf_counter() - start))
    start = time.perf_counter()
    interleave(fronts.shared, parts, one.pdf, io.BytesIO(), title="bench")
    timings.append(("copying the edition behind them (pypdf)", time.perf_counter() - start))
    start = time.perf_counter()
    list(paper.labels([c.label for c in one.copies], title="bench"))
    timings.append(("labels (WeasyPrint)", time.perf_counter() - start))
    start = time.perf_counter()
    write_print_run(plan, settings, out)
    timings.append(("whole write_print_run, in process", time.perf_counter() - start))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--facilities", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-print-"))
    config = make_project(folder, args.members, args.facilities)
    edition_pdf = folder / "built" / "print-letter6.pdf"
    edition_pages = len(PdfReader(edition_pdf).pages)
    print(
        f"{args.members} members at {args.facilities} facilities; the edition's print PDF: "
        f"{edition_pages} pages, {edition_pdf.stat().st_size / 1024:.0f} KB; "
        f"Python {sys.version.split()[0]}\n"
    )
    out = folder / "run"
    took, rss, said = run_command(config, out)
    print("| `digest print-run` (child process) | measured | target | |")
    print("|---|---:|---:|---|")
    print(f"| wall time | {took:.1f} s | {TIME_TARGET_S:.0f} s | {_verdict(took, TIME_TARGET_S)} |")
    print(f"| peak RSS | {rss:.0f} MB | {RSS_TARGET_MB:.0f} MB | {_verdict(rss, RSS_TARGET_MB)} |")
    print()
    for name in ("print-run-letter6.pdf", "labels-letter6.pdf", "manifest.csv"):
        path = out / name
        pages = f", {len(PdfReader(path).pages)} pages" if name.endswith(".pdf") else ""
        print(f"- {name}: {path.stat().st_size / 1024:,.0f} KB{pages}")
    print("\n" + "\n".join(f"    {line}" for line in said.strip().splitlines()[-3:]) + "\n")
    print("| step, in this process | seconds |")
    print("|---|---:|")
    for name, seconds in stages(config, folder / "again"):
        print(f"| {name} | {seconds:.2f} |")


def _verdict(measured: float, target: float) -> str:
    return "PASS" if measured < target else "OVER"


if __name__ == "__main__":
    main()
