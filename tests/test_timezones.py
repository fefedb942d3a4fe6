"""Each subscriber's own timezone: imported, chosen on the forms, shown, and migrated in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.audience.addresses import subscriber_timezone, timezone_names
from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.cli import app
from digest.config import Secrets
from digest.context import App
from digest.errors import AudienceError
from digest.store import open_engine
from digest.store.db import MIGRATIONS, head_revision, sqlite_url_for
from digest.store.tables import subscribers
from digest.web.app import create_app
from tests.conftest import import_people

KEY = "timezone-test-secret-key-0123456789"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _zones(engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        query = sa.select(subscribers.c.email, subscribers.c.timezone)
        return {row.email: row.timezone for row in conn.execute(query)}


@pytest.mark.parametrize("name", ["UTC", "Pacific/Tongatapu", "Pacific/Honolulu", "Asia/Kolkata"])
def test_an_iana_name_is_a_timezone(name: str) -> None:
    assert subscriber_timezone(f" {name} ") == name
    assert name in timezone_names()


@pytest.mark.parametrize(
    "name", ["local", "localtime", "Factory", "utc", "/etc/localtime", "../../etc/passwd",
             "Mars/Olympus_Mons", "Europe/", "x" * 300]
)  # fmt: skip
def test_anything_else_is_refused_with_the_fix(name: str) -> None:
    with pytest.raises(AudienceError, match="IANA timezone name"):
        subscriber_timezone(name)


def test_blank_means_the_organisations() -> None:
    assert subscriber_timezone("") is None and subscriber_timezone("  ") is None
    assert subscriber_timezone(None) is None


def test_import_five_zones_reject_a_bad_row_and_update_on_reimport(
    database_url, make_project, tmp_path: Path
) -> None:
    settings = make_project().settings(database_url=database_url)
    engine = open_engine(settings.database_url, settings.base_dir)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,timezone\n"
        "tonga@example.org,To,Pacific/Tongatapu\n"
        "hono@example.org,Ho,Pacific/Honolulu\n"
        "utc@example.org,Ut,UTC\n"
        "kol@example.org,Ko,Asia/Kolkata\n"
        "bad@example.org,Ba,Mars/Olympus_Mons\n"
        "ber@example.org,Be,Europe/Berlin\n"
        "org@example.org,Or,\n"
    )
    report = import_people(settings, engine, people)
    assert report.added == 6
    [(line, why)] = list(report.rejected)
    assert line == 6 and "timezone 'Mars/Olympus_Mons'" in why
    assert _zones(engine) == {
        "tonga@example.org": "Pacific/Tongatapu",
        "hono@example.org": "Pacific/Honolulu",
        "utc@example.org": "UTC",
        "kol@example.org": "Asia/Kolkata",
        "ber@example.org": "Europe/Berlin",
        "org@example.org": None,
    }
    again = tmp_path / "again.csv"  # the alias; an empty cell keeps what is stored
    again.write_text("email,tz\ntonga@example.org,Pacific/Auckland\nhono@example.org,\n")
    report = import_people(settings, engine, again)
    assert (report.updated, report.unchanged) == (1, 1)
    zones = _zones(engine)
    assert zones["tonga@example.org"] == "Pacific/Auckland"
    assert zones["hono@example.org"] == "Pacific/Honolulu"


def test_export_keeps_its_columns(make_project, tmp_path: Path) -> None:
    project = make_project()
    people = tmp_path / "people.csv"
    people.write_text("email,timezone\ntonga@example.org,Pacific/Tongatapu\n")
    import_people(project.settings(), project.engine(), people)
    out = CliRunner().invoke(app, ["subscribers", "export", "--config", str(project.config)])
    assert out.stdout.splitlines()[0] == "email,name,status,lists,format,created"
    assert "Pacific" not in out.stdout


def test_show_prints_their_timezone_or_the_organisations(make_project, tmp_path: Path) -> None:
    project = make_project()
    people = tmp_path / "people.csv"
    people.write_text("email,timezone\nhono@example.org,Pacific/Honolulu\norg@example.org,\n")
    import_people(project.settings(), project.engine(), people)
    cfg = ["--config", str(project.config)]
    runner = CliRunner()
    shown = runner.invoke(app, ["subscribers", "show", "hono@example.org", "--json", *cfg])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["timezone"] == "Pacific/Honolulu"
    theirs = runner.invoke(app, ["subscribers", "show", "org@example.org", "--json", *cfg])
    assert json.loads(theirs.stdout)["timezone"] is None
    text = runner.invoke(app, ["subscribers", "show", "org@example.org", *cfg]).stdout
    assert "timezone: America/New_York (the organisation's)" in text
    text = runner.invoke(app, ["subscribers", "show", "hono@example.org", *cfg]).stdout
    assert "timezone: Pacific/Honolulu\n" in text


def test_staff_add_someone_with_their_timezone_and_a_bogus_one_is_refused(make_project) -> None:
    project = make_project()
    cfg = ["--config", str(project.config)]
    runner = CliRunner()
    add = ["subscribers", "add", "kiri@example.org", "--list", "weekly", *cfg]
    bogus = runner.invoke(app, [*add, "--timezone", "Mars/Olympus_Mons"])
    assert bogus.exit_code == 1 and "not an IANA timezone name" in bogus.output
    assert runner.invoke(app, ["subscribers", "show", "kiri@example.org", *cfg]).exit_code == 1
    assert runner.invoke(app, [*add, "--timezone", "Pacific/Kiritimati"]).exit_code == 0
    shown = runner.invoke(app, ["subscribers", "show", "kiri@example.org", "--json", *cfg])
    assert json.loads(shown.stdout)["timezone"] == "Pacific/Kiritimati"


def _client(project) -> TestClient:
    settings, engine = project.settings(), project.engine()
    return TestClient(create_app(App(settings, engine, Secrets(secret_key=KEY))))


def test_the_signup_form_stores_a_chosen_timezone_and_refuses_a_bogus_one(make_project) -> None:
    project = make_project()
    client = _client(project)
    page = client.get("/subscribe").text
    assert '<select name="timezone">' in page and "Your timezone" in page
    assert "the organisation&#39;s (America/New_York)" in page or (
        "the organisation's (America/New_York)" in page
    )
    assert page.index("Pacific/Honolulu") < page.index("Pacific/Tongatapu")
    body = "email=tonga%40example.org&list=weekly&format=html&timezone=Pacific%2FTongatapu"
    assert client.post("/subscribe", content=body, headers=FORM).status_code == 200
    assert details(project.engine(), "tonga@example.org").timezone == "Pacific/Tongatapu"
    plain = client.post("/subscribe", content="email=o%40example.org&list=weekly", headers=FORM)
    assert plain.status_code == 200 and details(project.engine(), "o@example.org").timezone is None
    bogus = "email=bog%40example.org&list=weekly&timezone=..%2F..%2Fetc%2Fpasswd"
    refused = client.post("/subscribe", content=bogus, headers=FORM)
    assert refused.status_code == 400 and "not an IANA timezone name" in refused.text
    assert '<select name="timezone">' in refused.text  # the form again
    assert "bog@example.org" not in _zones(project.engine())  # nothing stored


def test_the_preferences_page_changes_it(make_project, tmp_path: Path) -> None:
    project = make_project()
    people = tmp_path / "people.csv"
    people.write_text("email\nbo@example.org\n")
    import_people(project.settings(), project.engine(), people)
    client = _client(project)
    token = Keyring(KEY.encode()).make("preferences", 1, "weekly", now=project.app().clock())
    page = client.get(f"/p/{token}").text
    assert '<option value="" selected>' in page
    choices = "list=weekly&format=html&action=save&timezone="
    saved = client.post(f"/p/{token}", content=choices + "Pacific%2FHonolulu", headers=FORM)
    assert saved.status_code == 200 and "Saved." in saved.text
    assert details(project.engine(), "bo@example.org").timezone == "Pacific/Honolulu"
    assert '<option value="Pacific/Honolulu" selected>' in saved.text
    bad = client.post(f"/p/{token}", content=choices + "local&format=text", headers=FORM)
    assert bad.status_code == 400 and "not an IANA timezone name" in bad.text
    who = details(project.engine(), "bo@example.org")
    assert who.timezone == "Pacific/Honolulu" and who.memberships[0].format == "html"
    back = client.post(f"/p/{token}", content=choices, headers=FORM)
    assert back.status_code == 200
    assert details(project.engine(), "bo@example.org").timezone is None


def test_the_migration_upgrades_a_database_at_0015(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    raw = sa.create_engine(sqlite_url_for(url, tmp_path))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with raw.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0015")
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (id, email, email_key, name, status, source, created)"
                " VALUES (1, 'T@example.org', 't@example.org', 'Tee', 'active', 'import',"
                " '2026-01-02 03:04:05')"
            )
        )
    raw.dispose()
    engine = open_engine(url, tmp_path)
    with engine.connect() as conn:
        sub = conn.execute(sa.select(subscribers)).one()
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert (sub.email, sub.timezone, version) == ("T@example.org", None, head_revision())
