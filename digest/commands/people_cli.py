"""`digest subscribers ...` and `digest users ...`: the audience and the staff accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.commands.runner import ConfigOpt, DebugOpt, JsonOpt, PendingOpt, run

subscribers_app = typer.Typer(
    help="The audience: import, export, add, remove, show, forget, export-person.",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Staff accounts for the console at /admin.", no_args_is_help=True)


@subscribers_app.command("import")
def subscribers_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with an 'email' column (and 'name', 'format', 'profile'; for paper "
            "posted inside, 'inmate_id', 'facility', 'unit', 'address1', 'address2', "
            "'city', 'state', 'zip')."
        ),
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
    pending: PendingOpt = False,
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
        lambda a: import_command(
            a,
            file,
            list_slug=list_,
            fmt=format_,
            pending=pending,
            strict=strict,
            dry_run=dry_run,
            now=a.clock(),
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

    run(
        config,
        debug,
        lambda a: export_command(a, list_slug=list_, status=status, out=out),
    )


@subscribers_app.command("add")
def subscribers_add(
    email: Annotated[str, typer.Argument(help="The address to add.")],
    list_: Annotated[str, typer.Option("--list", help="List to add them to.")],
    name: Annotated[str, typer.Option(help="Their name.")] = "",
    format_: Annotated[str | None, typer.Option("--format", help="html, text or print.")] = None,
    profile: Annotated[
        str | None, typer.Option(help="Print facility profile (for print members).")
    ] = None,
    pending: PendingOpt = False,
    resubscribe: Annotated[
        bool, typer.Option(help="Lift their suppression (only if they asked in writing).")
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(help="Their IANA timezone (Pacific/Honolulu); default: the organisation's."),
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Put one person on a list (suppressed addresses are refused unless --resubscribe)."""
    from digest.audience.members import add

    run(
        config,
        debug,
        lambda a: add(
            a,
            email,
            list_slug=list_,
            name=name,
            fmt=format_,
            profile=profile,
            pending=pending,
            resubscribe=resubscribe,
            now=a.clock(),
            timezone=timezone,
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
        lambda a: remove(a, email, list_slug=list_, now=a.clock()),
    )


@subscribers_app.command("show")
def subscribers_show(
    email: Annotated[str, typer.Argument(help="The address to look up.")],
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Everything stored about one subscriber, as key: value lines (or --json), their
    mailing address for paper copies last."""
    from digest.commands import show_command

    run(config, debug, lambda a: show_command(a, email, as_json=as_json))


@subscribers_app.command("forget")
def subscribers_forget(
    email: Annotated[str, typer.Argument(help="The address of the person to erase.")],
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Erase one person everywhere (they asked to be forgotten); only a keyed mark of the
    address stays, so no import brings them back; signing up again on the website does."""
    from digest.audience.privacy import forget

    run(
        config,
        debug,
        lambda a: forget(a.engine, a.keys, email, who="command line", now=a.clock()).said(),
    )


@subscribers_app.command("export-person")
def subscribers_export_person(
    email: Annotated[str, typer.Argument(help="The address to look up.")],
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Everything stored about one person, as JSON (what they are sent when they ask)."""
    from digest.audience.privacy import person_json

    run(config, debug, lambda a: person_json(a, email))


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The staff member's email address.")],
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Add a staff account (or set a new password); the password is asked for, or read
    from standard input. At least 12 characters."""
    from digest.commands.staff import users_add_command

    run(config, debug, lambda a: users_add_command(a.engine, email, now=a.clock()))


@users_app.command("list")
def users_list(config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    """Every staff account, with its last login."""
    from digest.commands.staff import users_list_command

    run(config, debug, lambda a: users_list_command(a.engine))


@users_app.command("remove")
def users_remove(
    email: Annotated[str, typer.Argument(help="The staff member's email address.")],
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Remove a staff account; its sessions end at once."""
    from digest.commands.staff import users_remove_command

    run(config, debug, lambda a: users_remove_command(a.engine, email, now=a.clock()))
