"""What the `digest subscribers` commands and `digest lists` print."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import typer

from digest.audience.export import export_csv
from digest.audience.importer import import_csv
from digest.audience.members import details, list_summary
from digest.context import App
from digest.errors import AudienceError
from digest.lifecycle.welcome import prepare_welcomes


def import_command(
    app: App,
    path: Path,
    *,
    list_slug: str,
    fmt: str | None,
    pending: bool,
    strict: bool,
    dry_run: bool,
    now: datetime,
) -> None:
    """Fails (exit 1) only when the file cannot be read, or with --strict and a rejected row."""
    if not dry_run:  # the people it adds get the list's welcome (from digest serve)
        prepare_welcomes(app, [list_slug])
    report = import_csv(
        app,
        path,
        list_slug=list_slug,
        default_format=fmt,
        pending=pending,
        dry_run=dry_run,
        now=now,
        strict=strict,
    )
    for what, lines in (
        ("rejected", report.rejected),
        ("kept out", report.suppressed),
        ("duplicate", report.merged),
    ):
        for line, reason in lines:
            typer.secho(f"{path}:{line}: {what}: {reason}", err=True)
        if lines.not_shown:
            typer.secho(f"{path}: and {lines.not_shown} more {what} row(s)", err=True)
    if strict and report.rejected:
        raise AudienceError(
            f"{len(report.rejected)} row(s) rejected and --strict given: "
            "nothing imported; fix the rows above"
        )
    prefix = "dry run, nothing written: " if dry_run else ""
    typer.echo(
        f"{prefix}added {report.added}, updated {report.updated}, unchanged "
        f"{report.unchanged}, rejected {len(report.rejected)}, suppressed "
        f"{len(report.suppressed)} (list {list_slug})"
    )


def export_command(
    app: App,
    *,
    list_slug: str | None,
    status: str | None,
    out: Path | None,
) -> None:
    if out is None:
        count = export_csv(app, sys.stdout, list_slug=list_slug, status=status)
    else:
        try:
            with out.open("w", encoding="utf-8", newline="") as fh:
                count = export_csv(app, fh, list_slug=list_slug, status=status)
        except OSError as exc:
            raise AudienceError(f"cannot write {out} ({exc.strerror})") from None
    typer.secho(f"exported {count} subscriber(s)", err=True)


def show_command(app: App, address: str, *, as_json: bool) -> None:
    """``timezone`` is null in --json when they have none of their own (the organisation's)."""
    who = details(app.engine, address)
    info = who.as_dict()
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False))
        return
    for key, value in info.items():
        if key == "lists":
            value = (
                ", ".join(
                    f"{m['list']} ({m['status']}, {m['format']}"
                    + (f", {m['profile']})" if m["profile"] else ")")
                    for m in value
                )
                or "none"
            )
        elif key == "suppressed":
            value = (
                "no"
                if value is None
                else f"{value['reason']} since {value['since']} ({value['origin']})"
            )
        elif key == "timezone" and value is None:
            value = f"{app.settings.organisation.timezone} (the organisation's)"
        elif key == "mailing_address":
            value = who.mailing_line()
        typer.echo(f"{key}: {'' if value is None else value}")


NO_LISTS = """no lists in config.toml: add one for each kind you send, for example:

[[lists]]
slug = "weekly"
name = "Weekly digest"
kind = "digest"   # or "alerts" (special alerts), "print" (the print edition)"""


def lists_command(app: App, *, as_json: bool) -> None:
    summary = list_summary(app)
    if not summary and not as_json:
        typer.echo(NO_LISTS)
        return
    if as_json:
        typer.echo(
            json.dumps(
                {
                    slug: {"kind": kind, "name": name, "counts": counts}
                    for slug, kind, name, counts in summary
                }
            )
        )
        return
    for slug, kind, name, counts in summary:
        shown = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no members"
        typer.echo(f"{slug} ({kind}, {name}): {shown}")
