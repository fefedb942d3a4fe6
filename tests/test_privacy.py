"""Issue 17, item 4: the right to be forgotten, and a copy of one's data."""

from __future__ import annotations

import email as email_lib
import email.policy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.audience.importer import FORGOTTEN_ROW
from digest.audience.members import details
from digest.audience.privacy import export_person, forget
from digest.audience.tokens import Keyring
from digest.cli import app as cli
from digest.config import Secrets
from digest.context import App
from digest.staff import audit
from digest.store import mailing
from digest.store.tables import (
    batches,
    delivery_events,
    metadata,
    send_recipients,
    subscribers,
    suppressions,
)
from digest.web.app import create_app
from tests.conftest import EXAMPLE_SOURCES, NOW, import_people
from tests.console_setup import ALERTS, STAFF, WEEK, awaiting_approval, signed_in

KEY = "privacy-test-secret-key-0123456789"
ZED = "Zed.Quillfeather@Example.org"  # as they typed it
NAME = "Zed Quillfeather"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "person.schema.json").read_text())


@pytest.fixture
def project(make_project, monkeypatch: pytest.MonkeyPatch):
    """The console's project (Ana and Bo, the week built, a staff account) with Zed, who
    has left a trace in every place a person can: lists, a mailing address, a sign-up,
    a ledger row, SendGrid events, a failed batch's reason, staff audit lines."""
    project = make_project(EXAMPLE_SOURCES + ALERTS)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    awaiting_approval(project)
    people = project.folder / "zed.csv"
    people.write_text(f"email,name\n{ZED},{NAME}\n")
    settings, engine = project.settings(), project.engine()
    assert import_people(settings, engine, people).added == 1
    ctx = App(settings, engine, Secrets(secret_key=KEY))
    client = TestClient(create_app(ctx))
    answer = client.post("/subscribe", data={"email": ZED, "name": NAME, "list": "alerts"})
    assert answer.status_code == 200
    with engine.begin() as conn:
        zed = conn.execute(sa.select(subscribers).where(subscribers.c.name == NAME)).one()
        mailing.set_address(
            conn,
            zed.id,
            mailing.MailingAddress(
                inmate_id="Z-1", facility="North", address1="1 Road", city="X", state="NY",
                zip="10001",
            ),
            now=NOW,
        )  # fmt: skip
        batch = conn.execute(
            sa.insert(batches).values(
                edition_id=WEEK, seq=1, variant="html", transport="outbox", state="failed",
                attempts=1, reason=f"SendGrid 400: invalid address {ZED.lower()}",
                created=NOW, updated=NOW,
            )
        ).inserted_primary_key[0]  # fmt: skip
        conn.execute(
            sa.insert(send_recipients).values(
                edition_id=WEEK, subscriber_id=zed.id, batch_id=batch, email=ZED, name=NAME,
                format="html", list_slug="weekly",
            )
        )  # fmt: skip
        raw = json.dumps({"email": ZED, "event": "delivered", "sg_event_id": "e1"})
        conn.execute(
            sa.insert(delivery_events).values(
                sg_event_id="e1", kind="delivered", email=ZED, edition_id=WEEK, batch="1",
                at=NOW, received=NOW, raw=raw,
            )
        )  # fmt: skip
        audit.record(conn, who=STAFF, action="subscriber changed", target=zed.email_key,
                     detail=f"name of {NAME}", now=NOW)  # fmt: skip
    return project, ctx


def _holding(engine, *needles: str) -> list[str]:
    """Every table.column (of every text column of every table) holding a needle, any case."""
    found = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, (sa.String, sa.Text)):
                    continue
                for needle in needles:
                    query = sa.select(sa.func.count()).where(
                        sa.func.lower(column).contains(needle.casefold(), autoescape=True)
                    )
                    if conn.execute(query).scalar():
                        found.append(f"{table.name}.{column.name} ({needle})")
    return found


def test_forget_leaves_neither_address_nor_name_anywhere(project) -> None:
    _, ctx = project
    needles = (ZED, NAME, "Quillfeather")
    assert len(_holding(ctx.engine, *needles)) >= 8  # the fixture left its traces
    done = forget(ctx.engine, ctx.keys, ZED.upper(), who="test", now=NOW)
    assert _holding(ctx.engine, *needles) == []
    assert done.sends_kept == 1 and done.mark.startswith("forgotten:")
    with ctx.engine.connect() as conn:
        [kept] = conn.execute(sa.select(send_recipients)).all()
        assert (kept.email, kept.name, kept.subscriber_id) == ("", "", done.subscriber_id)
        [mark] = conn.execute(sa.select(suppressions)).all()
        assert (mark.email_key, mark.email, mark.reason) == (done.mark, "", "forgotten")
        assert conn.execute(sa.select(delivery_events.c.kind)).scalars().all() == ["delivered"]
    assert "Ana" in {r.name for r in _all_subscribers(ctx.engine)}  # the others stay


def _all_subscribers(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(subscribers)).all()


def test_only_their_own_confirmed_sign_up_brings_them_back(project) -> None:
    proj, ctx = project
    forget(ctx.engine, ctx.keys, ZED, who="test", now=NOW)
    people = proj.folder / "again.csv"
    people.write_text(f"email,name\nnew@example.org,New\n{ZED},{NAME}\n")
    result = CliRunner().invoke(
        cli,
        ["subscribers", "import", str(people), "--list", "weekly", "--config", str(proj.config)],
    )
    assert result.exit_code == 0, result.output
    assert f"again.csv:3: rejected: {FORGOTTEN_ROW}" in result.output
    assert ZED.casefold() not in result.output.casefold()  # nothing of who, in the report
    assert NAME not in {r.name for r in _all_subscribers(ctx.engine)}
    assert _holding(ctx.engine, ZED, NAME) == []
    # Staff cannot put them back either without saying they asked in writing.
    refused = CliRunner().invoke(
        cli, ["subscribers", "add", ZED, "--list", "weekly", "--config", str(proj.config)]
    )
    assert refused.exit_code == 1 and "forgotten" in refused.output
    client = TestClient(create_app(ctx))
    answer = client.post("/subscribe", data={"email": ZED, "name": "Zed", "list": "weekly"})
    assert answer.status_code == 200
    assert details(ctx.engine, ZED).status == "pending"
    folder = proj.folder / "var" / "outbox" / "confirm"
    newest = max(
        (p for p in folder.glob("*.eml") if ZED.casefold() in p.name.casefold()),
        key=lambda p: p.stat().st_mtime_ns,
    )
    msg = email_lib.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
    link = next(line for line in msg.get_content().splitlines() if "/c/" in line).strip()
    assert client.post("/c/" + link.rsplit("/c/", 1)[1]).status_code == 200
    back = details(ctx.engine, ZED, ctx.keys.forgotten)
    assert back.status == "active" and back.suppression is None
    assert [m.status for m in back.memberships] == ["active"]


def test_export_person_validates_and_an_unknown_address_is_one_line(project) -> None:
    proj, ctx = project
    result = CliRunner().invoke(
        cli, ["subscribers", "export-person", ZED.lower(), "--config", str(proj.config)]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    jsonschema.validate(found, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert found["subscriber"]["name"] == NAME
    assert {m["list_slug"] for m in found["memberships"]} == {"weekly", "alerts"}
    assert found["mailing_address"]["inmate_id"] == "Z-1"
    assert found["signup_requests"][0]["lists"] == ["alerts"]
    assert found["sends"] == [
        {"edition": WEEK, "list": "weekly", "format": "html", "batch_state": "failed",
         "accepted_at": None}
    ]  # fmt: skip
    assert found["delivery_events"][0]["raw"]["event"] == "delivered"
    assert [a["action"] for a in found["audit"]] == ["subscriber changed"]
    unknown = CliRunner().invoke(
        cli, ["subscribers", "export-person", "nobody@example.org", "--config", str(proj.config)]
    )
    assert unknown.exit_code == 1
    assert len(unknown.output.strip().splitlines()) == 1 and "nobody@example.org" in unknown.output
    forgotten = CliRunner().invoke(
        cli, ["subscribers", "forget", ZED, "--config", str(proj.config)]
    )
    assert forgotten.exit_code == 0 and "forgotten: subscriber #" in forgotten.output
    # What is left of them: the mark, and the audit lines, now pointing at it.
    left = export_person(ctx.engine, ZED, ctx.keys.forgotten)
    jsonschema.validate(left, SCHEMA)
    assert left["subscriber"] is None and left["memberships"] == left["sends"] == []
    assert [s["reason"] for s in left["suppressions"]] == ["forgotten"]
    assert [a["action"] for a in left["audit"]] == ["subscriber changed", "subscriber forgotten"]
    assert NAME not in json.dumps(left)
    with pytest.raises(Exception, match="nothing is stored"):
        export_person(ctx.engine, ZED)  # without the key the mark is not theirs to see


def _zed_id(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(subscribers.c.id).where(subscribers.c.name == NAME)).one()[0]


def test_the_console_forgets_only_when_the_address_is_typed(project) -> None:
    _, ctx = project
    zed = _zed_id(ctx.engine)
    client, csrf = signed_in(ctx)
    page = client.get(f"/admin/subscribers/{zed}")
    assert "Download their data" in page.text and "Forget this person" in page.text
    data = client.get(f"/admin/subscribers/{zed}/data.json")
    assert data.status_code == 200 and data.headers["content-type"] == "application/json"
    jsonschema.validate(data.json(), SCHEMA)
    assert data.json()["subscriber"]["id"] == zed
    asked = client.post(f"/admin/subscribers/{zed}/forget", data={"csrf": csrf})
    assert asked.status_code == 200 and "Type their address to confirm" in asked.text
    wrong = client.post(
        f"/admin/subscribers/{zed}/forget", data={"csrf": csrf, "confirm": "ana@example.org"}
    )
    assert wrong.status_code == 400 and "not theirs" in wrong.text
    assert details(ctx.engine, ZED).name == NAME  # nothing changed
    done = client.post(
        f"/admin/subscribers/{zed}/forget", data={"csrf": csrf, "confirm": ZED.lower()}
    )
    assert done.status_code == 200 and "forgotten: subscriber #" in done.text
    assert _holding(ctx.engine, ZED, NAME) == []  # the audit lines included
    with ctx.engine.connect() as conn:
        lines = audit.recent(conn)
    actions = [line.action for line in lines]
    assert "subscriber forgotten" in actions and "subscriber data downloaded" in actions
    assert client.get(f"/admin/subscribers/{zed}").status_code == 404
    assert client.get(f"/admin/subscribers/{zed}/data.json").status_code == 404


def test_the_preferences_page_gives_only_its_own_person_their_data(project) -> None:
    _, ctx = project
    client = TestClient(create_app(ctx))
    with ctx.engine.connect() as conn:
        ana = conn.execute(sa.select(subscribers.c.id).where(subscribers.c.name == "Ana")).one()[0]
    token = Keyring(KEY.encode()).make("preferences", ana, "weekly", now=NOW)
    page = client.get(f"/p/{token}")
    assert "Download my data" in page.text and f"/p/{token}/data.json" in page.text
    data = client.get(f"/p/{token}/data.json")
    assert data.status_code == 200
    found = data.json()
    jsonschema.validate(found, SCHEMA)
    assert found["email"] == "ana@example.org" and found["subscriber"]["id"] == ana
    text = data.text.casefold()
    assert (
        "bo@example.org" not in text and ZED.casefold() not in text and NAME.casefold() not in text
    )
    other = Keyring(b"some-other-key-0123456789").make("preferences", ana, "weekly", now=NOW)
    assert client.get(f"/p/{other}/data.json").status_code == 400
    assert re.search(r"no-store", data.headers["cache-control"])
