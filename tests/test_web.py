"""The web app's first pages: one-click unsubscribe (RFC 8058) and SendGrid's event webhook."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from fastapi.testclient import TestClient

from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.config import Secrets
from digest.context import App
from digest.store.tables import delivery_events
from digest.web.app import create_app
from tests.conftest import NOW, import_people

KEY = "web-test-secret-key-0123456789"


@pytest.fixture
def site(make_project, tmp_path: Path):
    project = make_project()
    settings, engine = project.settings(), project.engine()
    people = tmp_path / "p.csv"
    people.write_text("email,name\nana@example.org,Ana\n")
    import_people(settings, engine, people)
    return project, settings, engine


def _client(settings, engine, **secrets: str) -> TestClient:
    return TestClient(create_app(App(settings, engine, Secrets(secret_key=KEY, **secrets))))


def test_get_never_unsubscribes_and_one_click_post_does(site) -> None:
    _, settings, engine = site
    client = _client(settings, engine)
    token = Keyring(KEY.encode()).make("unsubscribe", 1, "weekly", now=NOW)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert details(engine, "ana@example.org").memberships[0].status == "active"
    done = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "ana@example.org will get no more" in done.text
    assert details(engine, "ana@example.org").memberships[0].status == "unsubscribed"
    again = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and "already done" in again.text
    for response in (page, done):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in response.text


@pytest.mark.parametrize("token", ["nonsense", "abc.def"])
def test_a_bad_link_is_a_friendly_400(site, token: str) -> None:
    _, settings, engine = site
    for response in (
        _client(settings, engine).get(f"/u/{token}"),
        _client(settings, engine).post(f"/u/{token}"),
    ):
        assert response.status_code == 400 and "not valid" in response.text


def _vector(corpus: Path) -> dict:
    return json.loads((corpus / "sendgrid" / "event_webhook_signature_vector.json").read_text())


def test_the_signed_webhook_is_stored_and_a_tampered_one_is_403(site, corpus: Path) -> None:
    _, settings, engine = site
    vector = _vector(corpus)
    client = _client(settings, engine, webhook_public_key=vector["public_key_b64_der_spki"])
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": vector[
            "header_X-Twilio-Email-Event-Webhook-Signature"
        ],
        "X-Twilio-Email-Event-Webhook-Timestamp": vector[
            "header_X-Twilio-Email-Event-Webhook-Timestamp"
        ],
    }
    sent = datetime.fromtimestamp(int(headers["X-Twilio-Email-Event-Webhook-Timestamp"]), UTC)
    with time_machine.travel(sent, tick=False):
        bad = client.post(
            "/webhooks/sendgrid", content=vector["raw_body"].encode() + b" ", headers=headers
        )
        good = client.post(
            "/webhooks/sendgrid", content=vector["raw_body"].encode(), headers=headers
        )
        twice = client.post(
            "/webhooks/sendgrid", content=vector["raw_body"].encode(), headers=headers
        )
    assert bad.status_code == 403
    assert good.status_code == 200 and twice.status_code == 200
    with engine.connect() as conn:
        kinds = conn.execute(sa.select(delivery_events.c.kind)).scalars().all()
    assert kinds == ["dropped"]


def test_without_a_public_key_every_webhook_is_refused(site) -> None:
    _, settings, engine = site
    response = _client(settings, engine).post("/webhooks/sendgrid", content=b"[]")
    assert response.status_code == 403


def test_the_archive_shows_sent_editions_without_personal_links(
    make_project, tmp_path, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from digest.cli import app
    from tests.conftest import EXAMPLE_SOURCES

    project = make_project(EXAMPLE_SOURCES)
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    people = tmp_path / "p.csv"
    people.write_text("email\nana@example.org\n")
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    with time_machine.travel(NOW, tick=False):
        for args in (
            ["subscribers", "import", str(people), "--list", "weekly"],
            ["collect"],
            ["build"],
        ):
            assert runner.invoke(app, [*args, *cfg]).exit_code == 0
        settings, engine = project.settings(), project.engine()
        client = _client(settings, engine)
        assert client.get("/archive/2026-W48").status_code == 404  # not sent: private
        assert runner.invoke(app, ["send", "--yes", *cfg]).exit_code == 0
        page = client.get("/archive/2026-W48")
        feed = client.get("/archive.atom")
        index = client.get("/archive")
    assert page.status_code == 200 and "From the editor" in page.text
    for placeholder in ("-unsubscribe_url-", "-preferences_url-", "/u/", "/p/"):
        assert placeholder not in page.text
    assert feed.headers["content-type"].startswith("application/atom+xml")
    assert "/archive/2026-W48" in feed.text and "/archive/2026-W48" in index.text
    assert client.get("/archive/alert-20261126-120000").status_code == 404


def test_preferences_change_format_lists_and_leave_everything(make_project, tmp_path) -> None:
    project = make_project('[[lists]]\nslug = "alerts"\nname = "Alerts"\nkind = "alerts"\n')
    settings, engine = project.settings(), project.engine()
    people = tmp_path / "p.csv"
    people.write_text("email\nbo@example.org\n")
    import_people(settings, engine, people)
    client = _client(settings, engine)
    token = Keyring(KEY.encode()).make("preferences", 1, "weekly", now=NOW)
    page = client.get(f"/p/{token}")
    assert page.status_code == 200 and 'value="alerts"' in page.text
    saved = client.post(
        f"/p/{token}",
        content="list=weekly&list=alerts&format=text&action=save",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    info = details(engine, "bo@example.org")
    assert {(m.list_slug, m.status, m.format) for m in info.memberships} == {
        ("weekly", "active", "text"),
        ("alerts", "active", "text"),
    }
    left = client.post(
        f"/p/{token}",
        content="action=leave",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert left.status_code == 200
    info = details(engine, "bo@example.org")
    assert info.status == "unsubscribed" and info.suppression is not None
    wrong = client.get(f"/p/{Keyring(KEY.encode()).make('unsubscribe', 1, 'weekly', now=NOW)}")
    assert wrong.status_code == 400


def _form(client: TestClient, path: str, body: str):
    return client.post(
        path, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )


def test_subscribe_confirms_by_email_and_never_tells_who_is_subscribed(site) -> None:
    import email as email_lib
    import email.policy

    project, settings, engine = site
    client = _client(settings, engine)
    assert "Subscribe" in client.get("/subscribe").text
    new = _form(client, "/subscribe", "email=New%40example.org&name=New&list=weekly&format=text")
    old = _form(client, "/subscribe", "email=ana%40example.org&list=weekly&format=html")
    assert new.status_code == old.status_code == 200
    assert new.text == old.text  # the same answer, subscribed before or not
    assert details(engine, "new@example.org").status == "pending"
    folder = project.folder / "var" / "outbox" / "confirm"
    [eml] = [p for p in folder.glob("*.eml") if p.name.lower().endswith("new@example.org.eml")]
    msg = email_lib.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    link = next(line for line in msg.get_content().splitlines() if "/c/" in line).strip()
    token = link.rsplit("/c/", 1)[1]
    assert client.get(f"/c/{token}").status_code == 200  # a GET only shows the button
    assert details(engine, "new@example.org").status == "pending"
    done = client.post(f"/c/{token}")
    assert done.status_code == 200 and "is subscribed" in done.text
    info = details(engine, "new@example.org")
    assert info.status == "active" and info.memberships[0].status == "active"


def test_the_honeypot_and_the_rate_limit(site) -> None:
    _, settings, engine = site
    client = _client(settings, engine)
    bot = _form(client, "/subscribe", "email=bot%40example.org&list=weekly&website=spam")
    assert bot.status_code == 200
    with pytest.raises(Exception, match="no subscriber"):
        details(engine, "bot@example.org")
    answers = [
        _form(client, "/subscribe", "email=same%40example.org&list=weekly").status_code
        for _ in range(5)
    ]
    assert answers[:3] == [200, 200, 200] and answers[3:] == [429, 429]


def test_someone_who_left_can_come_back_by_confirming(site) -> None:
    from digest.audience.actions import unsubscribe

    _, settings, engine = site
    keys = Keyring(KEY.encode())
    unsubscribe(engine, keys, keys.make("unsubscribe", 1, "weekly", now=NOW), now=NOW)
    assert details(engine, "ana@example.org").suppression is not None
    client = _client(settings, engine)
    _form(client, "/subscribe", "email=ana%40example.org&list=weekly")
    info = details(engine, "ana@example.org")
    assert info.suppression is not None  # nothing changes before they confirm
    token = keys.make("confirm", 1, "weekly", now=datetime.now(UTC))
    assert client.post(f"/c/{token}").status_code == 200
    info = details(engine, "ana@example.org")
    assert info.status == "active" and info.suppression is None


def _signed(private_key, body: bytes, stamp: str) -> dict[str, str]:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signature = private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def test_a_signed_bounce_keeps_the_address_out_of_the_next_send(
    make_project, tmp_path, monkeypatch
) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from typer.testing import CliRunner

    from digest.cli import app
    from tests.conftest import EXAMPLE_SOURCES

    ours, theirs = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        ours.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    project = make_project(EXAMPLE_SOURCES)
    people = tmp_path / "p.csv"
    people.write_text("email\nana@example.org\nbo@example.org\n")
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    cfg = ["--config", str(project.config)]
    runner = CliRunner()
    settings, engine = project.settings(), project.engine()
    client = _client(settings, engine, webhook_public_key=public)
    body = json.dumps(
        [
            {
                "sg_event_id": "bounce-1",
                "event": "bounce",
                "type": "bounce",
                "email": "Bo@Example.org",
                "timestamp": int(NOW.timestamp()),
                "digest_edition": "2026-W47",
                "digest_batch": "1",
            }
        ]
    ).encode()
    stamp = str(int(NOW.timestamp()))
    stale = str(int(NOW.timestamp()) - 11 * 60)
    with time_machine.travel(NOW, tick=False):
        imported = runner.invoke(
            app, ["subscribers", "import", str(people), "--list", "weekly", *cfg]
        )
        assert imported.exit_code == 0
        refused = [
            client.post(
                "/webhooks/sendgrid", content=body + b" ", headers=_signed(ours, body, stamp)
            ),
            client.post("/webhooks/sendgrid", content=body, headers=_signed(theirs, body, stamp)),
            client.post("/webhooks/sendgrid", content=body, headers=_signed(ours, body, stale)),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403]
        with engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(delivery_events)).scalar() == 0
            )
        for _ in range(2):  # SendGrid retries: the replay stores nothing twice
            good = client.post(
                "/webhooks/sendgrid", content=body, headers=_signed(ours, body, stamp)
            )
            assert good.status_code == 200
        with engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(delivery_events)).scalar() == 1
            )
        assert details(engine, "bo@example.org").suppression["reason"] == "bounce"
        for args in (["collect"], ["build"], ["send", "--yes"]):
            result = runner.invoke(app, [*args, *cfg])
            assert result.exit_code == 0, result.output
    sent_to = sorted(
        p.read_text().split("To: ", 1)[1].split("\n", 1)[0]
        for p in (project.folder / "var" / "outbox").rglob("*.eml")
    )
    assert sent_to == ["ana@example.org"]


def test_wrong_addresses_and_methods_get_plain_pages(site) -> None:
    _, settings, engine = site
    client = _client(settings, engine)
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "There is nothing at this address" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in missing.headers["content-security-policy"]
    assert client.put("/subscribe").status_code == 405
    assert client.get("/archive/x/y").status_code == 404


def test_the_access_log_never_shows_a_link_s_token() -> None:
    import logging

    from digest.web.pages import HideTokens

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "POST",
            "/u/eyJzIjoxfQ.c2lnbmF0dXJl?x=1",
            "1.1",
            200,
        ),
        None,
    )
    HideTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /u/<token>?x=1 HTTP/1.1" 200'


def test_a_print_subscriber_chooses_the_facility_s_rules(make_project) -> None:
    project = make_project(
        '[print]\ndefault_profile = "letter6"\n'
        '[[print.profiles]]\nname = "letter6"\nnote = "six pages"\n'
        '[[print.profiles]]\nname = "jpay"\nnote = "JPay, 6,000 characters"\n'
    )
    settings, engine = project.settings(), project.engine()
    client = _client(settings, engine)
    page = client.get("/subscribe").text
    assert '<option value="jpay">jpay: JPay, 6,000 characters</option>' in page
    assert '<option value="letter6" selected>' in page
    _form(client, "/subscribe", "email=kin%40example.org&list=weekly&format=print&profile=jpay")
    [member] = details(engine, "kin@example.org").memberships
    assert (member.format, member.profile) == ("print", "jpay")


def test_our_own_failure_is_a_503_so_sendgrid_sends_again(site, monkeypatch) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    import digest.web.webhook as web_app

    _, settings, engine = site
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode()

    def broken(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(web_app, "record_events", broken)
    body = b'[{"sg_event_id": "x1", "event": "bounce", "type": "bounce", "email": "a@b.org"}]'
    stamp = str(int(NOW.timestamp()))
    with time_machine.travel(NOW, tick=False):
        response = _client(settings, engine, webhook_public_key=public).post(
            "/webhooks/sendgrid", content=body, headers=_signed(key, body, stamp)
        )
    assert response.status_code == 503
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(delivery_events)).scalar() == 0


def test_a_rate_limit_forgets_keys_it_has_not_seen_for_a_window(monkeypatch) -> None:
    import time

    import digest.web.pages as pages

    monkeypatch.setattr(pages, "SWEEP_ABOVE", 20)
    limit = pages.RateLimit(count=1, window=0.05)
    for n in range(20):
        assert limit.allow(f"old{n}")
    assert not limit.allow("old0")  # still limited inside the window
    time.sleep(0.1)
    for n in range(5):
        assert limit.allow(f"new{n}")
    assert len(limit.seen) <= 6  # the twenty stale keys were dropped
