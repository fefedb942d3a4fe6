"""What `digest check` prints: a line per problem, a line per check skipped, then what passed.

Not run through ``runner.run``: that opens the application, which upgrades the database,
and a check must find an old database as it is; and a config that does not load is one of
the problems here, reported with the rest, not the end of the command.
"""

from __future__ import annotations

from pathlib import Path

import typer

from digest.checks.setup import SetupReport, run_setup_checks
from digest.commands.runner import errors_as_exit
from digest.config import Secrets


def check_command(config: Path | None, debug: bool) -> None:
    """Run every check; exit 1 when any found a problem (a skipped check is not one)."""
    with errors_as_exit(debug):
        report = run_setup_checks(config, Secrets.from_env())
        show_report(report)
    if report.problems:
        raise typer.Exit(1)


def show_report(report: SetupReport) -> None:
    for line in report.problems:
        typer.secho(f"problem: {line}", fg=typer.colors.RED)
    for line in report.notes:
        typer.echo(f"note: {line}")
    passed = len(report.passed)
    names = ", ".join(report.passed) or "none"
    if not report.problems:
        typer.secho(f"all {passed} checks passed: {names}", fg=typer.colors.GREEN)
        return
    found = len(report.problems)
    typer.echo(f"{found} {'problem' if found == 1 else 'problems'} found; passed: {names}")
