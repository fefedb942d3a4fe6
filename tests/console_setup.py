"""A project ready for the staff console: Ana and Bo on the weekly and alerts lists, the
examples' week built and awaiting approval, and one staff account."""

from __future__ import annotations

import threading
from typing import Any

import time_machine
from typer.testing import CliRunner

from digest.cli import app
from digest.lifecycle.states import State, transition
from digest.staff.users import add_user
from tests.conftest import NOW, Project

STAFF = "staff@example.org"
PASSWORD = "a long staff password"
WEEK = "2026-W48"
ALERTS = '\n[[lists]]\nslug = "alerts"\nname = "Action alerts"\nkind = "alerts"\n'


def _invoke(args: list[str]) -> Any:
    """In a thread of its own: collect starts an event loop, and a browser test's thread
    already runs Playwright's."""
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(CliRunner().invoke(app, args)))
    worker.start()
    worker.join()
    return results[0]


def awaiting_approval(project: Project, *, ask: bool = True) -> None:
    """Needs DIGEST_SECRET_KEY set and a config made with ``ALERTS`` and the example sources.
    ``ask`` False leaves the edition built (nobody asked for approval)."""
    people = project.folder / "people.csv"
    people.write_text("email,name\nana@example.org,Ana\nbo@example.org,Bo\n")
    cfg = ["--config", str(project.config)]
    with time_machine.travel(NOW, tick=False):
        for args in (
            ["subscribers", "import", str(people), "--list", "weekly"],
            ["subscribers", "import", str(people), "--list", "alerts"],
            ["collect"],
            ["build"],
        ):
            result = _invoke([*args, *cfg])
            assert result.exit_code == 0, result.output
    engine = project.engine()
    if ask:
        with engine.begin() as conn:
            transition(conn, WEEK, State.AWAITING, who="scheduler", now=NOW)
    add_user(engine, STAFF, PASSWORD, who="test", now=NOW)
