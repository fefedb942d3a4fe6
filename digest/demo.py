"""The demo: the whole weekly job on the bundled examples, in a throwaway folder."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from digest.audience.importer import import_csv
from digest.audience.tokens import keyring
from digest.commands import build_command, collect_command, send_command
from digest.commands.print_run_cli import print_run_command
from digest.config import Secrets, Settings, load_settings
from digest.context import App
from digest.paths import bundled
from digest.store import open_engine

# The examples were written for this week; the demo's clock is pinned to it so the
# edition always has content, whatever today's date.
DEMO_NOW = datetime(2026, 11, 26, 7, 0, tzinfo=ZoneInfo("America/New_York"))
SAMPLE_LISTS = (
    ("weekly", "sample-weekly.csv"),
    ("staff", "sample-staff.csv"),
    ("inside", "sample-inside.csv"),
    ("inside", "sample-mail-inside.csv"),  # people inside who get paper by post
)


def run_demo(out: Path | None) -> Path:
    """Set up a demo folder, then collect, build and send. Returns the folder."""
    folder = out or Path(tempfile.mkdtemp(prefix="digest-demo-"))
    settings = _prepare(folder)
    engine = open_engine(settings.database_url, settings.base_dir)
    typer.echo(f"demo folder: {folder}")
    typer.echo(f"clock pinned to {DEMO_NOW:%A %d %B %Y %H:%M %Z}, the week of the examples\n")
    demo = App(settings, engine, Secrets(), clock=lambda: DEMO_NOW)
    _import_samples(demo, folder / "subscribers")
    keyring(None, None, settings.var_dir, may_create=True)  # the demo signs with var/secret.key
    collect_command(settings, engine, DEMO_NOW)
    out_dir = folder / "edition"
    typer.echo("(the demo does not check links: the examples' hosts are made up)")
    build_command(demo, week=None, out=out_dir, force=False)
    # The weekly edition's lists: the digest ones and the print one.
    send_command(demo, list_slug=None, edition_id=None, dry_run=False, yes=True)
    typer.echo("")
    print_run_command(demo, "2026-W48", out=folder / "print-run")
    typer.echo(f"\nopen the email:  {out_dir / 'email.html'}")
    typer.echo(f"plain text:      {out_dir / 'email.txt'}")
    typer.echo(f"print edition:   {out_dir / 'print-default.pdf'} (and emessage-default-*.txt)")
    typer.echo(f"paper by post:   {folder / 'print-run'} (address pages, labels, manifest)")
    typer.echo(f"messages (.eml): {settings.resolve(settings.delivery.outbox_dir) / '2026-W48'}")
    typer.echo(f"try more:        digest build --config {folder / 'config.toml'} --force")
    typer.echo(
        f"the web app:     digest users add you@example.org --config {folder / 'config.toml'}; "
        f"digest serve --config {folder / 'config.toml'}; then http://127.0.0.1:8000/admin"
    )
    return folder


def _prepare(folder: Path) -> Settings:
    """Copy the bundled config, examples and sample lists; the database lives in the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundled("config.toml"), folder / "config.toml")
    shutil.copytree(bundled("examples"), folder / "examples", dirs_exist_ok=True)
    shutil.copytree(bundled("subscribers"), folder / "subscribers", dirs_exist_ok=True)
    # A flag beats DIGEST_DATABASE_URL: the demo never touches a real database.
    database_url = f"sqlite:///{folder / 'var' / 'digest.db'}"
    settings = load_settings(folder / "config.toml", database_url=database_url)
    # The examples link to made-up hosts: checking them would only say so, slowly.
    settings.checks = settings.checks.model_copy(update={"links": "off"})
    return settings


def _import_samples(demo: App, samples: Path) -> None:
    for slug, name in SAMPLE_LISTS:
        report = import_csv(
            demo,
            samples / name,
            list_slug=slug,
            default_format=None,
            pending=False,
            dry_run=False,
            now=DEMO_NOW,
        )
        typer.echo(f"imported {report.added} sample subscribers into {slug!r}")
