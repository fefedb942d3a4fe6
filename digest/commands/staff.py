"""Staff accounts for the console, from the command line."""

from __future__ import annotations

import sys
from datetime import datetime

import typer
from sqlalchemy.engine import Engine

from digest.commands.common import who_am_i
from digest.staff.users import StaffError, add_user, check_address, list_users, remove_user


def _read_password() -> str:
    """Asked twice, hidden, at a terminal; otherwise the first line of standard input."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise StaffError("no password on standard input: pipe one line, or run at a terminal")
    return line


def users_add_command(engine: Engine, email: str, *, now: datetime) -> None:
    check_address(email)  # before asking for a password for it
    done = add_user(engine, email, _read_password(), who=f"cli:{who_am_i()}", now=now)
    typer.echo(f"{email.strip()}: {done}; log in at /admin/login")


def users_list_command(engine: Engine) -> None:
    rows = list_users(engine)
    if not rows:
        typer.echo("no staff accounts yet: add one with 'digest users add EMAIL'")
    for row in rows:
        seen = f"last login {row.last_login:%Y-%m-%d %H:%M} UTC" if row.last_login else "never"
        locked = f", locked until {row.locked_until:%H:%M} UTC" if row.locked_until else ""
        typer.echo(f"{row.email}  ({seen}{locked})")


def users_remove_command(engine: Engine, email: str, *, now: datetime) -> None:
    remove_user(engine, email, who=f"cli:{who_am_i()}", now=now)
    typer.echo(f"{email.strip()}: removed, and logged out everywhere")
