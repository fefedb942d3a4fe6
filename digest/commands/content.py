"""What `digest collect` and `digest build` print."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy.engine import Engine

from digest.build import BuildResult, build
from digest.collect import SourceOutcome, collect
from digest.commands.common import warn, who_am_i
from digest.config import Settings
from digest.context import App
from digest.dispatch.variants import JOIN
from digest.errors import DigestError
from digest.lifecycle.checking import CheckReport, problems_of, refusal_of, run_checks
from digest.store.notes import any_notes


def _show_outcome(outcome: SourceOutcome) -> None:
    if outcome.error:
        warn(outcome.error)
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
        warn(warning)


# What `digest collect` and `digest build` say to a config.toml with nothing to fetch.
NO_SOURCES = """no sources to fetch: config.toml has no [[sources.feeds]] or [[sources.calendars]],
so an edition can hold staff notes at most. Add a feed to config.toml, for example:

[[sources.feeds]]
name = "news"
url = "https://example.org/feed.xml"
section = "news"

then run 'digest collect'."""


def collect_command(settings: Settings, engine: Engine, now: datetime) -> None:
    """Succeeds when some source worked (failures are warnings); fails when all failed.
    With no feed or calendar it says what to add and succeeds (exit 0: nothing failed),
    still reading the notes if there are any."""
    sources = settings.sources
    if not (sources.feeds or sources.calendars):
        typer.echo(NO_SOURCES)
        if sources.notes is None and not _console_notes(engine):
            return
    report = collect(settings, engine, now, on_outcome=_show_outcome)
    failed = len(report.failed)
    total = len(report.outcomes)
    if report.all_failed:
        raise DigestError(f"all {total} sources failed: nothing collected (see the warnings above)")
    if failed:
        warn(
            f"{failed} of {total} sources failed and were skipped; {report.added} new items "
            "from the rest"
        )
    else:
        typer.echo(f"collected {total} sources: {report.added} new")


def _console_notes(engine: Engine) -> bool:
    with engine.connect() as conn:
        return any_notes(conn)


def build_command(app: App, *, week: str | None, out: Path | None, force: bool) -> None:
    if not (app.settings.sources.feeds or app.settings.sources.calendars):
        typer.echo(NO_SOURCES)
    result = build(
        app.settings, app.engine, week=week, out=out, force=force, now=app.clock(), who=who_am_i()
    )
    for unplaced, count in result.unplaced.items():
        warn(
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
    for made in result.prints:
        left = f", {made.left_out} item(s) left out to fit" if made.left_out else ""
        typer.echo(
            f"  print ({made.profile}): {made.pages} page(s){left}; {made.parts} e-message part(s)"
        )
    show_variants(result, app.settings.edition.max_section_variants)
    typer.echo(
        f"  wrote email.html, email.txt, edition.json and the print files to {result.folder}"
    )
    show_checks(run_checks(app.settings, app.engine, edition.id, app.clock()))


def show_variants(result: BuildResult, cap: int) -> None:
    """One line per section variant rendered; a warning when the cap left readers out."""
    wanted = result.wanted
    for made in result.variants:
        readers = wanted.readers[frozenset(made.token.split(JOIN))]
        parts = [f"HTML {len(made.email.html.encode()) / 1024:.1f} KB"] if made.email else []
        parts += [f"print ({p.profile}) {p.pages} page(s)" for p in made.prints]
        typer.echo(f"  sections {made.token}: {readers} reader(s); {', '.join(parts)}")
    if wanted.over_cap:
        warn(
            f"{wanted.over_cap} reader(s) get the whole edition instead of the sections they "
            f"chose: {wanted.left_out} choice(s) past the {cap} most read "
            f"(edition.max_section_variants = {cap}; raise it to render them)"
        )


SHOWN_PROBLEMS = 10


def show_checks(report: CheckReport) -> None:
    """Each check's verdict, then the problems it found (the first few of each)."""
    typer.echo("  checks before sending:")
    for check in report.checks:
        typer.echo(f"    {check.name}: {check.verdict}: {check.summary}")
        problems = problems_of(check)
        for line in problems[:SHOWN_PROBLEMS]:
            typer.echo(f"      {line}")
        if len(problems) > SHOWN_PROBLEMS:
            typer.echo(f"      and {len(problems) - SHOWN_PROBLEMS} more (see the console)")
    if report.blocked:
        warn(refusal_of(report))
