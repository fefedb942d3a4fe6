"""The ``digest`` command: one subcommand per job, each a thin call into the library."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.engine import Engine

from digest import clock
from digest.config import Secrets, Settings, load_settings
from digest.errors import DigestError
from digest.store import open_engine

app = typer.Typer(
    help="Weekly newsletter and digest generator: collect, build, send.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
subscribers_app = typer.Typer(
    help="The audience: import, export, add, remove and show subscribers.", no_args_is_help=True
)
app.add_typer(subscribers_app, name="subscribers")
users_app = typer.Typer(help="Staff accounts for the console at /admin.", no_args_is_help=True)
app.add_typer(users_app, name="users")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="config.toml to use (default: ./config.toml, or $DIGEST_CONFIG).",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def main() -> None:
    """Console-script entry point."""
    app()


@contextmanager
def errors_as_exit(debug: bool) -> Iterator[None]:
    """DigestError: one red line and exit 1. Anything else: a short line unless --debug."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    try:
        yield
    except DigestError as exc:
        if debug:
            raise
        _fail(f"error: {exc}")
    except KeyboardInterrupt:
        _fail("interrupted: nothing half-written was kept", code=130)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if debug:
            raise
        _fail(
            f"error: unexpected {type(exc).__name__}: {exc} (run again with --debug for "
            "the details, and report it)"
        )


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run(config: Path | None, debug: bool, job: Callable[[Settings, Engine], None]) -> None:
    """Load the settings, open the database and run one job, errors turned into exit statuses."""
    with errors_as_exit(debug):
        settings = load_settings(config)
        job(settings, open_engine(settings.database_url, settings.base_dir))


@app.command()
def collect(config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Fetch every source once and store new items (safe to run daily or hourly)."""
    from digest.commands import collect_command

    run(
        config,
        debug,
        lambda s, e: collect_command(s, e, clock.now()),
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
        lambda s, e: build_command(
            s,
            e,
            week=week,
            out=out,
            force=force,
            now=clock.now(),
        ),
    )


@app.command()
def send(
    list_: Annotated[
        str | None,
        typer.Option(
            "--list", help="Send to this list only (default: every list of kind 'digest')."
        ),
    ] = None,
    edition: Annotated[
        str | None, typer.Option(help="Edition id (default: the latest built).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; send nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    resend_uncertain: Annotated[
        bool,
        typer.Option(
            "--resend-uncertain", help="Send uncertain batches again (some may then get it twice)."
        ),
    ] = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Deliver an edition (to the outbox when SENDGRID_API_KEY is not set); run again to resume."""
    from digest.commands import send_command

    run(
        config,
        debug,
        lambda s, e: send_command(
            s,
            e,
            Secrets.from_env(),
            list_slug=list_,
            edition_id=edition,
            dry_run=dry_run,
            yes=yes,
            resend_uncertain=resend_uncertain,
            now=clock.now(),
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
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
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
        lambda s, e: alert_command(
            s,
            e,
            Secrets.from_env(),
            subject=subject,
            body=body,
            list_slug=list_,
            test_to=test_to,
            dry_run=dry_run,
            yes=yes,
            now=clock.now(),
            at=at,
            config=config,
        ),
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address the web app listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The web app and the scheduler in one process (collect daily, the weekly edition,
    approval deadlines, scheduled alerts) until SIGTERM or Ctrl-C."""
    from digest.commands import serve_command
    from digest.config import config_path

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    run(config, debug, lambda s, e: serve_command(s, e, config_path(config), host=host, port=port))


@app.command("editions")
def editions_list(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Every edition and alert with its state (built, awaiting approval, sent ...) and who."""
    from digest.commands import editions_command

    run(config, debug, lambda s, e: editions_command(e, as_json=as_json))


@app.command()
def approve(
    edition: Annotated[str, typer.Argument(help="The edition awaiting approval.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Approve an edition that awaits approval: it is sent now."""
    from digest.commands import approve_command

    run(
        config,
        debug,
        lambda s, e: approve_command(s, e, Secrets.from_env(), edition, yes=yes, now=clock.now()),
    )


@app.command()
def reject(
    edition: Annotated[str, typer.Argument(help="The edition awaiting approval.")],
    note: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Reject an edition that awaits approval: it is never sent."""
    from digest.commands import reject_command

    run(config, debug, lambda s, e: reject_command(e, edition, note=note, now=clock.now()))


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

    run(config, debug, lambda s, e: status_command(e, edition, as_json=as_json))


@subscribers_app.command("import")
def subscribers_import(
    file: Annotated[
        Path, typer.Argument(help="CSV with an 'email' column (and 'name', 'format').")
    ],
    list_: Annotated[str, typer.Option("--list", help="List to add them to.")],
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="html, text or print, for rows that do not say "
            "(default: print on a print list, else html).",
        ),
    ] = None,
    pending: Annotated[bool, typer.Option(help="Make them confirm first.")] = False,
    strict: Annotated[bool, typer.Option(help="Write nothing if any row is rejected.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; write nothing.")] = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Import subscribers from a CSV file into a list; every bad row is reported by line."""
    from digest.commands import import_command

    run(
        config,
        debug,
        lambda s, e: import_command(
            s,
            e,
            file,
            list_slug=list_,
            fmt=format_,
            pending=pending,
            strict=strict,
            dry_run=dry_run,
            now=clock.now(),
        ),
    )


@subscribers_app.command("export")
def subscribers_export(
    list_: Annotated[str | None, typer.Option("--list", help="Only members of this list.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: pending, active, unsubscribed, bounced, complained."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write to this file (default: standard output).")
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write subscribers as CSV (email,name,status,lists,format,created), spreadsheet-safe."""
    from digest.commands import export_command

    run(config, debug, lambda s, e: export_command(s, e, list_slug=list_, status=status, out=out))


@subscribers_app.command("add")
def subscribers_add(
    email: Annotated[str, typer.Argument(help="The address to add.")],
    list_: Annotated[str, typer.Option("--list", help="List to add them to.")],
    name: Annotated[str, typer.Option(help="Their name.")] = "",
    format_: Annotated[str | None, typer.Option("--format", help="html, text or print.")] = None,
    profile: Annotated[
        str | None, typer.Option(help="Print facility profile (for print members).")
    ] = None,
    pending: Annotated[bool, typer.Option(help="Make them confirm first.")] = False,
    resubscribe: Annotated[
        bool, typer.Option(help="Lift their suppression (only if they asked in writing).")
    ] = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Put one person on a list (suppressed addresses are refused unless --resubscribe)."""
    from digest.audience.members import add

    run(
        config,
        debug,
        lambda s, e: typer.echo(
            add(
                s,
                e,
                email,
                list_slug=list_,
                name=name,
                fmt=format_,
                profile=profile,
                pending=pending,
                resubscribe=resubscribe,
                now=clock.now(),
            )
        ),
    )


@subscribers_app.command("remove")
def subscribers_remove(
    email: Annotated[str, typer.Argument(help="The address to remove.")],
    list_: Annotated[
        str | None,
        typer.Option(
            "--list",
            help="Only from this list (default: from every list, and suppress the address).",
        ),
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Take someone off a list, or off everything (then they are never mailed again)."""
    from digest.audience.members import remove

    run(
        config,
        debug,
        lambda s, e: typer.echo(remove(s, e, email, list_slug=list_, now=clock.now())),
    )


@subscribers_app.command("show")
def subscribers_show(
    email: Annotated[str, typer.Argument(help="The address to look up.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Everything stored about one subscriber, as key: value lines (or --json)."""
    from digest.commands import show_command

    run(config, debug, lambda s, e: show_command(e, email, as_json=as_json))


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The staff member's email address.")],
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Add a staff account (or set a new password); the password is asked for, or read
    from standard input. At least 12 characters."""
    from digest.commands.staff import users_add_command

    run(config, debug, lambda s, e: users_add_command(e, email, now=clock.now()))


@users_app.command("list")
def users_list(config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Every staff account, with its last login."""
    from digest.commands.staff import users_list_command

    run(config, debug, lambda s, e: users_list_command(e))


@users_app.command("remove")
def users_remove(
    email: Annotated[str, typer.Argument(help="The staff member's email address.")],
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Remove a staff account; its sessions end at once."""
    from digest.commands.staff import users_remove_command

    run(config, debug, lambda s, e: users_remove_command(e, email, now=clock.now()))


@app.command("lists")
def lists_command(
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The lists from config.toml with their members counted by status."""
    from digest.commands import lists_command as show_lists

    run(config, debug, lambda s, e: show_lists(s, e, as_json=as_json))


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
