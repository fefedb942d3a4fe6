"""The ``digest`` command: one subcommand per job, each a thin call into the library."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digest.commands.ops_cli import backup, init, restore
from digest.commands.people_cli import subscribers_app, users_app
from digest.commands.runner import ConfigOpt, DebugOpt, JsonOpt, YesOpt, errors_as_exit, run

if TYPE_CHECKING:
    from digest.context import App

app = typer.Typer(
    help="Weekly newsletter and digest generator: collect, build, send.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(users_app, name="users")
app.command()(init)
app.command()(backup)
app.command()(restore)


OverrideOpt = Annotated[
    str,
    typer.Option(
        "--override",
        metavar="REASON",
        help="Send it although a blocking check holds it, and say why (kept in its history).",
    ),
]


class LogFormatChoice(StrEnum):
    TEXT = "text"
    JSON = "json"


def main() -> None:
    """Console-script entry point."""
    app()


@app.command()
def collect(config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Fetch every source once and store new items (safe to run daily or hourly)."""
    from digest.commands import collect_command

    run(
        config,
        debug,
        lambda a: collect_command(a.settings, a.engine, a.clock()),
    )


@app.command()
def build(
    week: Annotated[
        str | None, typer.Option(help="ISO week to build, e.g. 2026-W48 (default: this week).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for email.html, email.txt and edition.json (default: var/editions/WEEK)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Build even when nothing is new.")] = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Assemble and render the week's edition; print its subject, counts and size."""
    from digest.commands import build_command

    run(
        config,
        debug,
        lambda a: build_command(a, week=week, out=out, force=force),
    )


@app.command()
def send(
    list_: Annotated[
        str | None,
        typer.Option(
            "--list",
            help="Send to this list only (default: every list the edition's kind goes to: "
            "digest and print lists for a weekly edition, alerts lists for an alert).",
        ),
    ] = None,
    edition: Annotated[
        str | None, typer.Option(help="Edition id (default: the latest built).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; send nothing.")
    ] = False,
    yes: YesOpt = False,
    resend_uncertain: Annotated[
        bool,
        typer.Option(
            "--resend-uncertain", help="Send uncertain batches again (some may then get it twice)."
        ),
    ] = False,
    override: OverrideOpt = "",
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Deliver an edition (to the outbox when SENDGRID_API_KEY is not set); run again to resume."""
    from digest.commands import send_command

    run(
        config,
        debug,
        lambda a: send_command(
            a,
            list_slug=list_,
            edition_id=edition,
            dry_run=dry_run,
            yes=yes,
            resend_uncertain=resend_uncertain,
            override_reason=override,
        ),
    )


@app.command()
def alert(
    subject: Annotated[str, typer.Option(help="The subject line.")],
    body: Annotated[Path, typer.Option(help="The message, a Markdown file.")],
    list_: Annotated[
        str | None,
        typer.Option("--list", help="Send to this list (default: every list of kind 'alerts')."),
    ] = None,
    test_to: Annotated[
        str | None, typer.Option(help="Send one copy, marked [TEST], to this address only.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the list and count; send nothing.")
    ] = False,
    yes: YesOpt = False,
    at: Annotated[
        str | None,
        typer.Option(
            help="Send later, at HH:MM or 2026-12-01T18:30 (organisation's timezone), "
            "through 'digest serve'."
        ),
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Send a special alert now (or --at a time), through the digest's ledger and transports."""
    from digest.commands import alert_command

    run(
        config,
        debug,
        lambda a: alert_command(
            a,
            subject=subject,
            body=body,
            list_slug=list_,
            test_to=test_to,
            dry_run=dry_run,
            yes=yes,
            at=at,
        ),
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address the web app listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
    log_format: Annotated[
        LogFormatChoice,
        typer.Option(
            help="text: lines for people, times in the organisation's zone; json: one "
            "object a line for machines.",
        ),
    ] = LogFormatChoice.TEXT,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes serving the web app; the scheduler runs in the main process "
            "only. Default: 1 with SQLite (its writes queue one at a time whatever the "
            "count), one a CPU core (at most 4) with PostgreSQL.",
        ),
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The web app and the scheduler (collect daily, the weekly edition, approval
    deadlines, scheduled alerts, the daily backup) until SIGTERM or Ctrl-C; the scheduler
    runs in one process whatever --workers says."""
    from digest.commands import serve_command
    from digest.config import config_path
    from digest.logs import LogFormat, configure_logging

    def start(a: App) -> None:
        fmt: LogFormat = "json" if log_format is LogFormatChoice.JSON else "text"
        configure_logging(fmt, a.settings.organisation.zone, debug=debug)
        serve_command(
            a,
            config_path(config),
            host=host,
            port=port,
            workers=workers,
            log_format=fmt,
            debug=debug,
        )

    run(config, debug, start)


@app.command("editions")
def editions_list(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Every edition and alert with its state (built, awaiting approval, sent ...) and who."""
    from digest.commands import editions_command

    run(config, debug, lambda a: editions_command(a.engine, as_json=as_json))


@app.command()
def approve(
    edition: Annotated[str, typer.Argument(help="The edition awaiting approval.")],
    yes: YesOpt = False,
    override: OverrideOpt = "",
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Approve an edition that awaits approval: it is sent now."""
    from digest.commands import approve_command

    run(config, debug, lambda a: approve_command(a, edition, yes=yes, override_reason=override))


@app.command()
def reject(
    edition: Annotated[str, typer.Argument(help="The edition awaiting approval.")],
    note: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Reject an edition that awaits approval: it is never sent."""
    from digest.commands import reject_command

    run(config, debug, lambda a: reject_command(a, edition, note=note))


@app.command()
def cancel(
    edition: Annotated[
        str, typer.Argument(help="A scheduled alert, or an approved edition not yet sending.")
    ],
    note: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Cancel a scheduled alert (or an approved edition whose send has not started)."""
    from digest.commands import cancel_command

    run(config, debug, lambda a: cancel_command(a, edition, note=note))


@app.command()
def status(
    edition: Annotated[
        str | None, typer.Argument(help="Edition id (default: the latest one sent).")
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The send ledger of an edition: batches and recipients by state, failures, next steps."""
    from digest.commands import status_command

    run(config, debug, lambda a: status_command(a.engine, edition, as_json=as_json, now=a.clock()))


@app.command("print-run")
def print_run(
    edition: Annotated[str, typer.Argument(help="The edition to mail, e.g. 2026-W48.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the files (default: var/print-runs/EDITION)."),
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The paper copies for print members inside with a mailing address, per print profile:
    print-run-PROFILE.pdf (each copy behind an address page for a #10 window envelope, letter
    folded in three), labels-PROFILE.pdf (Avery 5160) and manifest.csv (sheets counted
    single-sided: mailrooms photocopy). Incomplete addresses are listed and left out."""
    from digest.commands.print_run_cli import print_run_command

    run(config, debug, lambda a: print_run_command(a, edition, out=out))


@app.command()
def check(config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Check the whole set-up: config, secrets, SendGrid, the sender domain's SPF, DKIM and
    DMARC, the webhook key, the database and the sources; a line per problem, exit 1 if any."""
    from digest.commands.check_cli import check_command

    check_command(config, debug)


@app.command("lists")
def lists_command(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The lists from config.toml with their members counted by status."""
    from digest.commands import lists_command as show_lists

    run(config, debug, lambda a: show_lists(a, as_json=as_json))


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the demo (default: a new temporary folder).")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Run the whole weekly job on the bundled examples, through the outbox."""
    from digest.demo import run_demo

    with errors_as_exit(debug):
        run_demo(out)


if __name__ == "__main__":  # pragma: no cover
    main()
