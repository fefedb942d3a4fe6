"""The staff console: login, lock-out, CSRF, sessions, and what staff do there."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.cli import app as cli
from digest.config import Secrets
from digest.context import App
from digest.store import editions
from digest.store.tables import audit_log, batches, delivery_events, staff_sessions
from digest.web.app import create_app
from digest.web.auth import safe_next
from digest.web.console import wait_for_background
from tests.conftest import EXAMPLE_SOURCES, NOW
from tests.console_setup import ALERTS, PASSWORD, STAFF, WEEK, awaiting_approval
from tests.waiting import wait_until

KEY = "admin-test-secret-key-0123456789"


@pytest.fixture
def console(make_project, monkeypatch: pytest.MonkeyPatch):
    """A project with subscribers, a built edition awaiting approval, and one staff account."""
    project = make_project(EXAMPLE_SOURCES + ALERTS)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    awaiting_approval(project)
    return project, project.settings(), project.engine()


def _client(settings, engine) -> TestClient:
    return TestClient(
        create_app(App(settings, engine, Secrets(secret_key=KEY))),
        base_url="https://testserver",
        follow_redirects=False,
    )


def _csrf(page_text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page_text)
    assert found, "no CSRF field in the form"
    return found.group(1)


def _login(client: TestClient, email: str = STAFF, password: str = PASSWORD, next_: str = ""):
    page = client.get("/admin/login" + (f"?next={next_}" if next_ else ""))
    data = {"csrf": _csrf(page.text), "email": email, "password": password}
    if next_:
        data["next"] = next_
    return client.post("/admin/login", data=data)


def _logged_in(settings, engine) -> tuple[TestClient, str]:
    client = _client(settings, engine)
    assert _login(client).status_code == 303
    return client, _csrf(client.get("/admin").text)


def _audit(engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).all()
    return [(r.who, r.action, r.target) for r in rows]


def _wait_for_state(engine, edition_id: str, state: str) -> None:
    def reached() -> bool:
        with engine.connect() as conn:
            return editions.state_of(conn, edition_id) == state

    wait_until(f"{edition_id} to become {state}", reached)


PAGES = [
    "/admin",
    f"/admin/editions/{WEEK}",
    f"/admin/editions/{WEEK}/email.html",
    f"/admin/editions/{WEEK}/status.json",
    "/admin/alerts/new",
    "/admin/subscribers",
    "/admin/subscribers/1",
    "/admin/subscribers/import",
    "/admin/subscribers.csv",
    "/admin/activity",
]
FORMS = [
    f"/admin/editions/{WEEK}/approve",
    f"/admin/editions/{WEEK}/send",
    f"/admin/editions/{WEEK}/reject",
    "/admin/alerts",
    "/admin/subscribers/import",
    "/admin/subscribers/1/remove",
    "/admin/logout",
]


@pytest.mark.parametrize("cookie", [None, "forged-session-token", ""])
def test_nothing_in_the_console_answers_without_a_session(console, cookie) -> None:
    _, settings, engine = console
    client = _client(settings, engine)
    if cookie is not None:
        client.cookies.set("digest_admin", cookie, domain="testserver", path="/admin")
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login?next=/admin"), path
        assert "ana@example.org" not in response.text
    for path in FORMS:
        response = client.post(path, data={"csrf": "x", "action": "confirm", "body": "x"})
        assert response.status_code == 403, path
    with engine.connect() as conn:
        assert editions.state_of(conn, WEEK) == "awaiting_approval"
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar() == 0


def test_login_sets_a_secure_session_and_logout_ends_it(console) -> None:
    _, settings, engine = console
    client = _client(settings, engine)
    done = _login(client, next_=f"/admin/editions/{WEEK}")
    assert done.status_code == 303 and done.headers["location"] == f"/admin/editions/{WEEK}"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("digest_admin="))
    for flag in ("HttpOnly", "Secure", "Path=/admin", "SameSite=lax"):
        assert flag in cookie
    token = client.cookies["digest_admin"]
    home = client.get("/admin")
    assert home.status_code == 200 and WEEK in home.text and STAFF in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    with engine.connect() as conn:  # only a hash of the cookie is stored
        stored = conn.execute(sa.select(staff_sessions.c.token_hash)).scalars().all()
    assert stored and token not in stored
    assert client.post("/admin/logout", data={"csrf": "wrong"}).status_code == 403
    assert client.get("/admin").status_code == 200  # a forged logout did nothing
    out = client.post("/admin/logout", data={"csrf": _csrf(home.text)})
    assert out.status_code == 303
    again = _client(settings, engine)
    again.cookies.set("digest_admin", token, domain="testserver", path="/admin")
    assert again.get("/admin").status_code == 303  # the old cookie is worth nothing now
    assert [(w, a) for w, a, _ in _audit(engine)][-2:] == [
        (STAFF, "logged in"),
        (STAFF, "logged out"),
    ]


def test_the_login_form_itself_needs_its_token(console) -> None:
    _, settings, engine = console
    client = _client(settings, engine)
    client.get("/admin/login")
    forged = client.post(
        "/admin/login", data={"csrf": "guess", "email": STAFF, "password": PASSWORD}
    )
    assert forged.status_code == 403 and "digest_admin" not in client.cookies


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(console) -> None:
    _, settings, engine = console
    client = _client(settings, engine)
    with time_machine.travel(NOW, tick=False) as traveller:
        answers = [_login(client, password=f"wrong {i}").status_code for i in range(5)]
        assert answers == [401, 401, 401, 401, 429]
        locked = _login(client)  # the right password, but locked
        assert locked.status_code == 429 and "locked until" in locked.text
        assert "digest_admin" not in client.cookies
        traveller.shift(timedelta(minutes=16))
        assert _login(client).status_code == 303
    actions = [a for _, a, _ in _audit(engine)]
    assert actions.count("login failed") == 5 and "login refused" in actions
    unknown = _login(_client(settings, engine), email="nobody@example.org")
    assert unknown.status_code == 401 and "Wrong email address or password" in unknown.text


def test_an_unknown_address_answers_like_an_account_lock_out_included(console) -> None:
    _, settings, engine = console
    client = _client(settings, engine)

    def answers(email: str) -> list[tuple[int, str]]:
        out = []
        for i in range(6):
            page = _login(client, email=email, password=f"wrong {i}")
            said = re.search(r'<p role="alert"><strong>(.*?)</strong>', page.text)
            out.append((page.status_code, said.group(1) if said else ""))
        return out

    with time_machine.travel(NOW, tick=False):
        assert answers("nobody@example.org") == answers(STAFF)


@pytest.mark.parametrize(
    "wanted",
    [
        "https://evil.example/",
        "//evil.example/admin",
        "/\\evil.example",
        "javascript:alert(1)",
        "/admin\\@evil.example",
        "/archive",
    ],
)
def test_login_never_sends_anyone_off_the_console(console, wanted: str) -> None:
    _, settings, engine = console
    client = _client(settings, engine)
    page = client.get("/admin/login", params={"next": wanted})
    response = client.post(
        "/admin/login",
        data={"csrf": _csrf(page.text), "email": STAFF, "password": PASSWORD, "next": wanted},
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    assert safe_next(wanted) == "/admin"


def test_every_form_checks_its_csrf_token(console) -> None:
    _, settings, engine = console
    client, _ = _logged_in(settings, engine)
    for path in FORMS:
        for token in (None, "wrong"):
            data = {"action": "confirm", "subject": "S", "body": "B", "note": "n"}
            if token:
                data["csrf"] = token
            assert client.post(path, data=data).status_code == 403, path
    with engine.connect() as conn:
        assert editions.state_of(conn, WEEK) == "awaiting_approval"
        assert editions.listing(conn)[0].id == WEEK  # no alert was stored
    assert client.get("/admin").status_code == 200  # still logged in


def test_approve_sends_in_the_background_and_the_page_shows_progress(console) -> None:
    project, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    page = client.get(f"/admin/editions/{WEEK}")
    assert "Approve and send" in page.text
    assert f'src="/admin/editions/{WEEK}/email.html" width="375"' in page.text
    assert 'width="800"' in page.text and "From the editor" in page.text  # the text part
    assert "-unsubscribe_url-" not in page.text and "-preferences_url-" not in page.text
    assert re.search(r"emessage-[a-z-]+-1\.txt \(\d+ characters\)", page.text)
    pdf = re.search(rf'href="(/admin/editions/{WEEK}/files/print-[^"]+\.pdf)"', page.text)
    assert pdf and client.get(pdf.group(1)).content.startswith(b"%PDF")
    preview = client.get(f"/admin/editions/{WEEK}/email.html")
    assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
    assert "-unsubscribe_url-" not in preview.text and "From the editor" in preview.text
    with time_machine.travel(NOW, tick=False):
        asked = client.post(f"/admin/editions/{WEEK}/approve", data={"csrf": csrf})
        assert asked.status_code == 200 and "to 2 recipients now?" in asked.text
        assert "Lists: Weekly" in asked.text
        with engine.connect() as conn:  # the first press only asks
            assert editions.state_of(conn, WEEK) == "awaiting_approval"
        done = client.post(f"/admin/editions/{WEEK}/approve", data={"csrf": csrf, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == f"/admin/editions/{WEEK}"
    shown = client.get(done.headers["location"]).text  # never the old state and its button
    assert "Approve and send" not in shown and re.search(r"State: <strong>(sending|sent)", shown)
    _wait_for_state(engine, WEEK, "sent")
    status = client.get(f"/admin/editions/{WEEK}/status.json").json()
    assert status["recipients"]["accepted"] == 2 and status["recipients"]["pending"] == 0
    after = client.get(f"/admin/editions/{WEEK}")
    assert "Approve and send" not in after.text and "(staff@example.org)" in after.text
    assert len(list((project.folder / "var" / "outbox").rglob("*.eml"))) == 2
    assert (STAFF, "approved", WEEK) in _audit(engine)
    again = client.post(f"/admin/editions/{WEEK}/approve", data={"csrf": csrf, "confirm": "yes"})
    assert again.status_code == 409 and "cannot become approved" in again.text


def test_a_built_edition_without_approval_is_sent_from_its_page(make_project, monkeypatch) -> None:
    project = make_project(EXAMPLE_SOURCES + ALERTS)
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    awaiting_approval(project, ask=False)
    settings, engine = project.settings(), project.engine()
    client, csrf = _logged_in(settings, engine)
    page = client.get(f"/admin/editions/{WEEK}").text
    assert "Send now" in page and "Approve and send" not in page
    asked = client.post(f"/admin/editions/{WEEK}/send", data={"csrf": csrf})
    assert asked.status_code == 200 and "to 2 recipients now?" in asked.text
    assert not list((project.folder / "var").rglob("*.eml"))  # the first press only asks
    done = client.post(f"/admin/editions/{WEEK}/send", data={"csrf": csrf, "confirm": "yes"})
    assert done.status_code == 303
    shown = client.get(done.headers["location"]).text
    assert "Send now" not in shown and re.search(r"State: <strong>(sending|sent)", shown)
    _wait_for_state(engine, WEEK, "sent")
    assert len(list((project.folder / "var" / "outbox").rglob("*.eml"))) == 2
    again = client.post(f"/admin/editions/{WEEK}/send", data={"csrf": csrf, "confirm": "yes"})
    assert again.status_code == 409 and "is sent" in again.text
    assert (STAFF, "sent", WEEK) in _audit(engine)


def test_reject_keeps_the_edition_from_going_out(console) -> None:
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    done = client.post(f"/admin/editions/{WEEK}/reject", data={"csrf": csrf, "note": "typo"})
    assert done.status_code == 303
    with engine.connect() as conn:
        assert editions.state_of(conn, WEEK) == "rejected"
        who = editions.history(conn, WEEK)[0].who
    assert who == STAFF and (STAFF, "rejected", WEEK) in _audit(engine)


def test_an_alert_is_previewed_tested_confirmed_and_sent(console) -> None:
    project, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    form = {
        "csrf": csrf,
        "subject": "Call the council today",
        "body": "The vote is **tonight**.\n\n<script>alert(1)</script>",
        "list": "alerts",
    }
    preview = client.post("/admin/alerts", data={**form, "action": "preview"})
    assert preview.status_code == 200
    assert "&lt;strong&gt;tonight&lt;/strong&gt;" in preview.text  # in the escaped srcdoc
    assert "<script>" not in preview.text and "The vote is tonight." in preview.text
    assert "-unsubscribe_url-" not in preview.text
    outbox = project.folder / "var" / "outbox"
    tested = client.post(
        "/admin/alerts", data={**form, "action": "test", "test_to": "me@example.org"}
    )
    assert "Test sent to me@example.org" in tested.text
    copies = list(outbox.rglob("*.eml"))
    assert len(copies) == 1 and "[TEST]" in copies[0].read_text()
    with engine.connect() as conn:
        assert [r.id for r in editions.listing(conn)] == [WEEK]  # a test records nothing
    asked = client.post("/admin/alerts", data={**form, "action": "send"})
    assert "to 2 recipients now?" in asked.text
    assert '<textarea name="body" hidden>The vote is **tonight**.' in asked.text
    chosen = re.search(r'name="alert" value="(alert-[0-9-]+)"', asked.text).group(1)
    confirm = {**form, "action": "confirm", "alert": chosen}
    sent = client.post("/admin/alerts", data=confirm)
    assert sent.status_code == 303 and sent.headers["location"] == f"/admin/editions/{chosen}"
    _wait_for_state(engine, chosen, "sent")
    twice = client.post("/admin/alerts", data=confirm)  # a second click on "Yes"
    assert twice.headers["location"] == f"/admin/editions/{chosen}"
    assert wait_for_background(timeout=30) == 0  # any second send would have finished
    assert len(list(outbox.rglob("*.eml"))) == 3
    with engine.connect() as conn:
        assert [r.id for r in editions.listing(conn)].count(chosen) == 1
    assert [a for _, a, _ in _audit(engine)][-2:] == ["alert test sent", "alert sent"]
    empty = client.post("/admin/alerts", data={**form, "body": " ", "action": "preview"})
    assert empty.status_code == 400 and "empty" in empty.text
    untitled = client.post("/admin/alerts", data={**form, "subject": " ", "action": "preview"})
    assert untitled.status_code == 400 and "the subject is empty" in untitled.text
    nowhere = client.post("/admin/alerts", data={**form, "action": "test", "test_to": "nope"})
    assert nowhere.status_code == 400 and "is not an email address" in nowhere.text
    assert len(list(outbox.rglob("*.eml"))) == 3


def test_subscribers_search_view_import_and_export(console) -> None:
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    found = client.get("/admin/subscribers", params={"q": "ANA"})
    assert "ana@example.org" in found.text and "bo@example.org" not in found.text
    assert "Nobody matches" in client.get("/admin/subscribers", params={"q": "%"}).text
    person = client.get("/admin/subscribers/1")
    assert person.status_code == 200 and "alerts" in person.text and "weekly" in person.text
    assert client.get("/admin/subscribers/999").status_code == 404
    upload = b"email,name\ncy@example.org,Cy\nnot-an-address,X\n"
    dry = client.post(
        "/admin/subscribers/import",
        data={"csrf": csrf, "list": "weekly", "dry_run": "on"},
        files={"file": ("new.csv", upload, "text/csv")},
    )
    assert "Dry run, nothing written: added 1" in dry.text
    assert "new.csv:3: rejected" in dry.text
    assert "cy@example.org" not in client.get("/admin/subscribers").text
    real = client.post(
        "/admin/subscribers/import",
        data={"csrf": csrf, "list": "weekly"},
        files={"file": ("new.csv", upload, "text/csv")},
    )
    assert "added 1, updated 0" in real.text
    assert "cy@example.org" in client.get("/admin/subscribers").text
    export = client.get("/admin/subscribers.csv", params={"list": "weekly"})
    assert export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0] == "email,name,status,lists,format,created"
    assert len(export.text.splitlines()) == 4
    assert client.get("/admin/subscribers.csv", params={"list": "nope"}).status_code == 400
    actions = [(a, t) for _, a, t in _audit(engine)]
    assert ("subscribers imported", "weekly") in actions
    assert ("subscribers exported", "weekly") in actions
    assert actions.count(("subscribers imported", "weekly")) == 1  # not the dry run


def test_staff_take_someone_off_a_list_or_off_everything(console) -> None:
    from digest.audience.members import details

    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    one = client.post("/admin/subscribers/1/remove", data={"csrf": csrf, "list": "alerts"})
    assert one.status_code == 303
    page = client.get(one.headers["location"])
    assert "removed ana@example.org from alerts" in page.text
    who = details(engine, "ana@example.org")
    assert {(m.list_slug, m.status) for m in who.memberships} == {
        ("weekly", "active"),
        ("alerts", "unsubscribed"),
    }
    assert who.suppression is None
    client.post("/admin/subscribers/1/remove", data={"csrf": csrf, "list": ""})
    who = details(engine, "ana@example.org")
    assert who.status == "unsubscribed" and who.suppression["reason"] == "staff"
    assert who.suppression["origin"] == f"console ({STAFF})"
    nowhere = client.post("/admin/subscribers/1/remove", data={"csrf": csrf, "list": "nope"})
    assert "not done" in client.get(nowhere.headers["location"]).text
    removed = [(a, t) for _, a, t in _audit(engine) if a == "subscriber removed"]
    assert removed == [("subscriber removed", "ana@example.org")] * 2


def test_an_edition_s_numbers_come_from_sendgrid_s_events(console) -> None:
    _, settings, engine = console
    rows = [
        ("e1", "delivered", "ana@example.org"),
        ("e2", "delivered", "bo@example.org"),
        ("e3", "bounce", "bo@example.org"),
        ("e4", "spamreport", "ana@example.org"),
        ("e5", "open", "ana@example.org"),
        ("e6", "delivered", "ana@example.org"),  # the same person twice counts once
    ]
    with engine.begin() as conn:
        for ident, kind, email in rows:
            conn.execute(
                delivery_events.insert().values(
                    sg_event_id=ident,
                    kind=kind,
                    email=email,
                    edition_id=WEEK,
                    batch="1",
                    at=NOW,
                    received=NOW,
                    raw="{}",
                )
            )
    client, _ = _logged_in(settings, engine)
    page = client.get(f"/admin/editions/{WEEK}").text

    def number(label: str) -> str:
        found = re.search(rf"<th scope=\"row\">{label}</th><td>([^<]*)</td>", page)
        assert found, label
        return found.group(1)

    assert (number("Delivered"), number("Bounced"), number("Spam reports")) == ("2", "1", "1")
    assert "Opened" not in page and "not tracked" in page
    tracked = _client(
        settings.model_copy(
            update={"delivery": settings.delivery.model_copy(update={"tracking": True})}
        ),
        engine,
    )
    _login(tracked)
    assert '<th scope="row">Opened</th><td>1</td>' in tracked.get(f"/admin/editions/{WEEK}").text


def test_staff_accounts_from_the_command_line(console) -> None:
    project, _, engine = console
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    bad = runner.invoke(cli, ["users", "add", "not-an-address", *cfg], input="")
    assert bad.exit_code == 1 and "is not an email address" in bad.output
    short = runner.invoke(cli, ["users", "add", "new@example.org", *cfg], input="short\n")
    assert short.exit_code == 1 and "shorter than 12" in short.output
    added = runner.invoke(
        cli, ["users", "add", "New@Example.org", *cfg], input="another long one\n"
    )
    assert added.exit_code == 0 and "added" in added.output
    assert "another long one" not in added.output
    listed = runner.invoke(cli, ["users", "list", *cfg])
    assert "new@example.org" in listed.output and "staff@example.org" in listed.output
    removed = runner.invoke(cli, ["users", "remove", "new@example.org", *cfg])
    assert removed.exit_code == 0
    missing = runner.invoke(cli, ["users", "remove", "new@example.org", *cfg])
    assert missing.exit_code == 1 and "no staff account" in missing.output
    assert [a for _, a, _ in _audit(engine)][-2:] == ["user added", "user removed"]


def test_bodies_over_the_limit_are_refused_before_they_are_read(console) -> None:
    _, settings, engine = console
    client = _client(settings, engine)
    big = b"List-Unsubscribe=One-Click&x=" + b"a" * 1_100_000
    response = client.post("/u/whatever", content=big)
    assert response.status_code == 413

    def chunks():
        for _ in range(12):
            yield b"a" * 100_000

    streamed = client.post("/subscribe", content=chunks())  # no Content-Length
    assert streamed.status_code == 413
