"""What `digest print-run` prints: who is left out, then a line per profile as it is made."""

from __future__ import annotations

from pathlib import Path

import typer

from digest.context import App
from digest.print_run import MANIFEST, ProfileRun, plan_print_run, write_print_run


def print_run_command(app: App, edition_id: str, *, out: Path | None) -> None:
    plan = plan_print_run(app, edition_id)
    for person in plan.left_out:
        typer.echo(f"{person.email}: {person.why}: not in this run ({person.fix})", err=True)
    folder = out or app.settings.var_dir / "print-runs" / edition_id
    runs = write_print_run(plan, app.settings, folder, on_profile=_show)
    copies = sum(r.copies for r in runs)
    sheets = sum(r.sheets for r in runs)
    left = f"; {len(plan.left_out)} left out (listed above)" if plan.left_out else ""
    typer.echo(
        f"print run of {edition_id}: {copies} copies, {sheets} sheets printed single-sided"
        f"{left}; wrote {MANIFEST} and the PDFs to {folder}"
    )


def _show(run: ProfileRun) -> None:
    places = len(run.facilities)
    typer.echo(
        f"{run.profile}: {run.copies} {_plural(run.copies, 'copy', 'copies')} for {places} "
        f"{_plural(places, 'facility', 'facilities')}, {run.pages_per_copy} pages each "
        f"(address page + {run.pages_per_copy - 1}), {run.sheets} sheets single-sided; "
        f"{run.run_pdf.name}, {run.labels_pdf.name} ({run.label_sheets} "
        f"{_plural(run.label_sheets, 'sheet', 'sheets')} of Avery 5160)"
    )


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many
