"""A project ready for the staff console: Ana and Bo on the weekly and alerts lists, the
examples' week built and awaiting approval, and one staff account."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import time_machine
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.cli import app
from digest.context import App
from digest.lifecycle.states import State, transition
from digest.staff.users import add_user
from digest.web.app import create_app
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


# What _prepare made, per config, environment and ``ask``, in this test process: the
# same import, collect and build would give the same database, so it is made once and
# each test gets its own copy of it.
_MADE: dict[tuple[Any, ...], Path] = {}


def awaiting_approval(project: Project, *, ask: bool = True) -> None:
    """Needs DIGEST_SECRET_KEY set and a config made with ``ALERTS`` and the example sources.
    ``ask`` False leaves the edition built (nobody asked for approval)."""
    config = project.config.read_text()
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("DIGEST_")))
    key = (config, env, ask)
    made = _MADE.get(key)
    if made is not None and str(project.folder) not in config:
        for name in ("var", "people.csv"):
            source = made / name
            if source.is_dir():
                shutil.copytree(source, project.folder / name)
            else:
                shutil.copy2(source, project.folder / name)
        return
    _prepare(project, ask=ask)
    if str(project.folder) in config:
        return  # made for this folder alone
    keep = Path(tempfile.mkdtemp(prefix="digest-console-"))
    shutil.copytree(project.folder / "var", keep / "var")
    shutil.copy2(project.folder / "people.csv", keep / "people.csv")
    _MADE[key] = keep


def _prepare(project: Project, *, ask: bool) -> None:
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
    engine.dispose()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field in the page"
    return found.group(1)


def signed_in(ctx: App, email: str = STAFF, password: str = PASSWORD) -> tuple[TestClient, str]:
    """A client of the web app signed in to the console, and a form's CSRF token."""
    client = TestClient(create_app(ctx), base_url="https://testserver", follow_redirects=False)
    csrf = csrf_of(client.get("/admin/login").text)
    answer = client.post("/admin/login", data={"csrf": csrf, "email": email, "password": password})
    assert answer.status_code == 303, answer.text
    return client, csrf_of(client.get("/admin").text)
