"""What each command prints: the CLI's presentation, over the library's service functions."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy.engine import Engine

from digest.audience.export import export_csv
from digest.audience.importer import import_csv
from digest.audience.members import details, list_summary
from digest.build import build
from digest.collect import SourceOutcome, collect
from digest.config import Secrets, Settings
from digest.dispatch.send import SendPlan, deliver, plan_send
from digest.errors import AudienceError, DigestError


def _warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def _show_outcome(outcome: SourceOutcome) -> None:
    if outcome.error:
        _warn(outcome.error)
        return
    if outcome.not_modified:
        typer.echo(f"{outcome.label}: not modified since the last collect")
    else:
        extra = f", {outcome.merged} merged as duplicates" if outcome.merged else ""
        extra += f", {outcome.updated} updated" if outcome.updated else ""
        extra += f", {outcome.removed} removed" if outcome.removed else ""
        extra += f" ({outcome.upcoming} upcoming)" if outcome.upcoming else ""
        typer.echo(f"{outcome.label}: {outcome.added} new{extra}")
    for warning in outcome.warnings:
        _warn(warning)


def collect_command(settings: Settings, engine: Engine, now: datetime) -> None:
    """Succeeds when some source worked (failures are warnings); fails when all failed."""
    report = collect(settings, engine, now, on_outcome=_show_outcome)
    failed = len(report.failed)
    total = len(report.outcomes)
    if report.all_failed:
        raise DigestError(f"all {total} sources failed: nothing collected (see the warnings above)")
    if failed:
        _warn(
            f"{failed} of {total} sources failed and were skipped; {report.added} new items "
            "from the rest"
        )
    else:
        typer.echo(f"collected {total} sources: {report.added} new")


def build_command(
    settings: Settings,
    engine: Engine,
    *,
    week: str | None,
    out: Path | None,
    force: bool,
    now: datetime,
) -> None:
    result = build(settings, engine, week=week, out=out, force=force, now=now)
    for unplaced, count in result.unplaced.items():
        _warn(
            f"{count} item(s) in section {unplaced!r}, which is not in edition.sections: "
            "left out (add the section, or change the feed's section)"
        )
    if result.edition is None or result.email is None:
        typer.echo(
            f"no new items for {result.plan.id} since the last edition: no edition built "
            "(use --force to build one anyway)"
        )
        return
    edition = result.edition
    typer.echo(f"edition {edition.id}: {edition.subject}")
    if edition.editor_note:
        typer.echo("  editor's note: 1")
    for section in edition.sections:
        more = f" (+{section.omitted} on the website)" if section.omitted else ""
        typer.echo(f"  {section.key}: {section.count}{more}")
    typer.echo(
        f"  HTML {result.html_bytes / 1024:.1f} KB, text "
        f"{len(result.email.text.encode()) / 1024:.1f} KB"
    )
    for name in ("email.html", "email.txt", "edition.json"):
        typer.echo(f"  wrote {result.folder / name if result.folder else name}")


def _show_plan(plan: SendPlan) -> None:
    formats = ", ".join(f"{n} {fmt}" for fmt, n in sorted(plan.by_format.items())) or "none"
    typer.echo(f"edition {plan.edition.id}: {plan.edition.subject}")
    typer.echo(f"  lists: {', '.join(plan.lists)}")
    typer.echo(
        f"  recipients: {len(plan.to_send)} to send ({formats}); "
        f"{len(plan.already_sent)} already sent"
    )
    if plan.print_members:
        _warn(f"{plan.print_members} print member(s) skipped: the print edition is not built yet")


def send_command(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    *,
    list_slug: str | None,
    edition_id: str | None,
    dry_run: bool,
    yes: bool,
    now: datetime,
) -> None:
    plan = plan_send(settings, engine, edition_id=edition_id, list_slug=list_slug)
    _show_plan(plan)
    if dry_run or not plan.to_send:
        typer.echo("dry run: nothing sent" if dry_run else "nothing to send")
        return
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Send to {len(plan.to_send)} recipients?", abort=True)
    if sys.stderr.isatty():
        with typer.progressbar(length=len(plan.to_send), label="sending", file=sys.stderr) as bar:
            report = deliver(
                settings, engine, secrets, plan, now=now, on_sent=lambda _r: bar.update(1)
            )
    else:
        report = deliver(settings, engine, secrets, plan, now=now)
    typer.echo(f"sent {len(report.written)} to the outbox: {report.folder}")


def import_command(
    settings: Settings,
    engine: Engine,
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
    report = import_csv(
        settings,
        engine,
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
    settings: Settings,
    engine: Engine,
    *,
    list_slug: str | None,
    status: str | None,
    out: Path | None,
) -> None:
    if out is None:
        count = export_csv(settings, engine, sys.stdout, list_slug=list_slug, status=status)
    else:
        try:
            with out.open("w", encoding="utf-8", newline="") as fh:
                count = export_csv(settings, engine, fh, list_slug=list_slug, status=status)
        except OSError as exc:
            raise AudienceError(f"cannot write {out} ({exc.strerror})") from None
    typer.secho(f"exported {count} subscriber(s)", err=True)


def show_command(engine: Engine, address: str, *, as_json: bool) -> None:
    info = details(engine, address).as_dict()
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
        typer.echo(f"{key}: {'' if value is None else value}")


def lists_command(settings: Settings, engine: Engine, *, as_json: bool) -> None:
    summary = list_summary(settings, engine)
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
