"""`digest init`, `digest backup` and `digest restore`: starting an organisation and
keeping its data. Registered on the ``digest`` app in cli.py; the work is in
``digest.init_project`` and ``digest.backup``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.commands.runner import ConfigOpt, DebugOpt, errors_as_exit, run


def init(
    folder: Annotated[
        Path, typer.Argument(help="Where to start the organisation (default: here).")
    ] = Path("."),
    name: Annotated[str | None, typer.Option(help="The organisation's name.")] = None,
    postal_address: Annotated[
        str | None, typer.Option(help="Its postal address (every email shows it).")
    ] = None,
    website: Annotated[str | None, typer.Option(help="Its website, https://…")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Its timezone, an IANA name such as America/New_York.")
    ] = None,
    from_email: Annotated[
        str | None, typer.Option(help="The sender address, e.g. news@example.org.")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(help="The public address of 'digest serve', e.g. https://news.example.org."),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Start an organisation: a config.toml with its details, lists for a weekly digest,
    alerts and a print edition, a notes folder and a subscribers template (asks at a
    terminal for what the flags leave out; never overwrites a config)."""
    from digest.init_project import Answers, init_command

    given = Answers(
        name=name,
        postal_address=postal_address,
        website=website,
        timezone=timezone,
        from_email=from_email,
        base_url=base_url,
    )
    with errors_as_exit(debug):
        init_command(folder, given)


def backup(
    out: Annotated[
        Path | None,
        typer.Option(help="The backup file (default: a dated file in [backup] dir)."),
    ] = None,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """A consistent copy of the database while 'digest serve' keeps writing (SQLite's online
    backup, or pg_dump's custom format for PostgreSQL)."""
    from digest.backup import backup_command

    run(config, debug, lambda a: backup_command(a, out=out))


def restore(
    file: Annotated[Path, typer.Argument(help="A file 'digest backup' made.")],
    force: Annotated[
        bool, typer.Option(help="Replace a database that holds data (it is lost).")
    ] = False,
    config: ConfigOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Put a backup back as the database: refused onto one that holds data unless --force,
    and checked for its migration level."""
    from digest.backup import restore_command

    with errors_as_exit(debug):
        restore_command(config, file, force=force)
