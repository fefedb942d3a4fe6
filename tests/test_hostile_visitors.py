"""Visitors who probe: timing that would tell who is staff or subscribed, forged client
addresses, a confirmation link used for someone else's sign-up, and the small holes (cache,
file names, huge reports, file modes, odd webhook times, a closed pipe)."""

from __future__ import annotations

import os
import re
import stat
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.config import Secrets
from digest.context import App
from digest.dispatch.outbox import OutboxTransport
from digest.errors import DeliveryError
from digest.staff import users
from digest.store.tables import delivery_events, signup_requests
from digest.web.app import create_app
from digest.web.deps import Limits
from digest.web.pages import RateLimit
from tests.conftest import NOW, import_people
from tests.served import Served

KEY = "hostile-visitors-secret-key-0123456789"
STAFF = "staff@example.org"
PASSWORD = "a long staff password"
LISTS = """
[[lists]]
slug = "alerts"
name = "Action alerts"
kind = "alerts"

[[lists]]
slug = "inside"
name = "Inside"
kind = "print"
"""
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _app(project, **settings: object) -> App:
    return App(project.settings(**settings), project.engine(), Secrets(secret_key=KEY))


def _no_limits() -> Limits:
    lots = 10**6
    return Limits(RateLimit(lots, 3600), RateLimit(lots, 3600), RateLimit(lots, 900))


def _confirm_link(project, address: str) -> str:
    [eml] = (project.folder / "var" / "outbox" / "confirm").glob(f"*-{address}.eml")
    return re.search(r"https?://\S+/c/(\S+)", eml.read_text())[1]  # type: ignore[index]


def _memberships(engine, address: str) -> dict[str, tuple[str, str]]:
    return {m.list_slug: (m.status, m.format) for m in details(engine, address).memberships}


def test_a_confirmation_link_confirms_only_its_own_sign_up(make_project) -> None:
    project = make_project(LISTS)
    client = TestClient(create_app(_app(project)))
    body = "email=a%40example.org&list=weekly&format=html"
    assert client.post("/subscribe", content=body, headers=FORM).status_code == 200
    first = _confirm_link(project, "a@example.org")
    body = "email=a%40example.org&list=alerts&list=inside&format=text"
    assert client.post("/subscribe", content=body, headers=FORM).status_code == 200
    second = _confirm_link(project, "a@example.org")
    assert first != second
    eml = next((project.folder / "var" / "outbox" / "confirm").glob("*.eml")).read_text()
    assert "Action alerts and Inside" in " ".join(eml.split())  # the email says what

    page = client.get(f"/c/{first}")
    assert "<strong>Weekly</strong> as email" in page.text and "Action alerts" not in page.text
    assert client.post(f"/c/{first}").status_code == 200
    engine = project.engine()
    assert _memberships(engine, "a@example.org") == {
        "weekly": ("active", "html"),  # the format of its own request, not the later one
        "alerts": ("pending", "text"),
        "inside": ("pending", "text"),
    }
    assert "Action alerts and Inside" in client.get(f"/c/{second}").text
    client.post(f"/c/{second}")
    assert _memberships(engine, "a@example.org") == {
        "weekly": ("active", "html"),
        "alerts": ("active", "text"),
        "inside": ("active", "text"),
    }


def test_a_confirmation_that_could_not_go_is_sent_later_and_only_once(
    make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.audience.confirmations import send_waiting

    project = make_project()
    ctx = _app(project)
    client = TestClient(create_app(ctx))
    real_send = OutboxTransport.send

    def crash(self, batch):
        raise ZeroDivisionError

    def refused(self, batch):
        raise DeliveryError("SendGrid is down")

    for address, failure in (("b", crash), ("c", refused)):
        monkeypatch.setattr(OutboxTransport, "send", failure)
        body = f"email={address}%40example.org&list=weekly"
        assert client.post("/subscribe", content=body, headers=FORM).status_code == 200
    with project.engine().connect() as conn:
        rows = conn.execute(sa.select(signup_requests).order_by(signup_requests.c.id)).all()
    assert [(r.sent, r.attempts) for r in rows] == [(None, 1), (None, 1)]
    assert [r.last_error for r in rows] == ["unexpected ZeroDivisionError", "SendGrid is down"]
    users.add_user(project.engine(), STAFF, PASSWORD, who="test", now=datetime.now(UTC))
    dashboard = _logged_in(project, ctx).get("/admin").text
    assert "2 confirmation email(s) to people who signed up have not gone yet" in dashboard
    assert "SendGrid is down" in dashboard

    monkeypatch.setattr(OutboxTransport, "send", real_send)
    assert send_waiting(ctx) == 0  # each waits a minute before the next try
    later = datetime.now(UTC) + timedelta(minutes=2)
    ctx.clock = lambda: later
    assert send_waiting(ctx) == 2
    assert send_waiting(ctx) == 0  # never twice
    assert _confirm_link(project, "b@example.org") and _confirm_link(project, "c@example.org")


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _close(a: list[float], b: list[float]) -> tuple[bool, float, float]:
    ma, mb = statistics.median(a), statistics.median(b)
    return abs(ma - mb) <= 0.2 * min(ma, mb), ma, mb


SIGN_UPS = 40


def test_signing_up_takes_as_long_for_a_member_as_for_a_new_address(
    make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project()
    members = [f"member{i}@example.org" for i in range(25)]
    people = tmp_path / "members.csv"
    people.write_text("email\n" + "\n".join(members) + "\n")
    import_people(project.settings(), project.engine(), people)
    real_send = OutboxTransport.send

    def slow_send(self, batch):  # a mail API's round trip
        time.sleep(0.05)
        return real_send(self, batch)

    monkeypatch.setattr(OutboxTransport, "send", slow_send)
    with Served(_app(project)) as site, httpx.Client(base_url=site.url) as client:
        site.web.state.limits = _no_limits()

        def sign_up(address: str) -> None:
            answer = client.post("/subscribe", content=f"email={address}&list=weekly", headers=FORM)
            assert answer.status_code == 200

        for i in range(5):  # warm up both paths
            sign_up(members[20 + i])
            sign_up(f"warm{i}@example.org")
        known, new = [], []
        # Forty of each, interleaved: a median of twenty moved by 20% on a busy machine.
        for i in range(SIGN_UPS):
            known.append(_timed(lambda i=i: sign_up(members[i % 20])))
            time.sleep(0.08)  # let the email of the last sign-up go
            new.append(_timed(lambda i=i: sign_up(f"new{i}@example.org")))
            time.sleep(0.08)
    close, m_known, m_new = _close(known, new)
    print(f"sign-up medians: member {m_known * 1000:.2f} ms, new {m_new * 1000:.2f} ms")
    assert close, f"median {m_known * 1000:.1f} ms for members, {m_new * 1000:.1f} ms for new"
    assert m_new < 0.05  # the email is not inside the answer
    assert len(list((project.folder / "var" / "outbox" / "confirm").glob("*new*.eml"))) == SIGN_UPS


def test_a_locked_account_and_an_unknown_address_take_the_same_time(
    make_project, full_cost_password_hashes
) -> None:
    project = make_project()
    engine = project.engine()
    users.add_user(engine, STAFF, PASSWORD, who="test", now=datetime.now(UTC))
    for address in (STAFF, "nobody@example.org"):
        results = [users.log_in(engine, address, "wrong", now=datetime.now(UTC)) for _ in range(5)]
        assert [r.locked_until is not None for r in results] == [False] * 4 + [True]
    locked, unknown = [], []
    for _ in range(20):
        locked.append(_timed(lambda: users.log_in(engine, STAFF, PASSWORD, now=datetime.now(UTC))))
        unknown.append(
            _timed(lambda: users.log_in(engine, "nobody@example.org", "x", now=datetime.now(UTC)))
        )
    close, m_locked, m_unknown = _close(locked, unknown)
    print(f"login medians: locked {m_locked * 1000:.2f} ms, unknown {m_unknown * 1000:.2f} ms")
    assert close, f"median {m_locked * 1000:.1f} ms locked, {m_unknown * 1000:.1f} ms unknown"
    assert m_locked > 0.005  # the locked account's answer includes a password hash


def test_failures_decay_the_same_way_for_a_real_and_an_unknown_address(make_project) -> None:
    project = make_project()
    engine = project.engine()
    users.add_user(engine, STAFF, PASSWORD, who="test", now=NOW - timedelta(days=1))

    def pattern(address: str) -> list[bool]:
        seen = []
        for minutes in (0, 1, 2, 3, 20, 21, 22, 23, 24, 25):  # four, a pause, then six
            result = users.log_in(engine, address, "wrong", now=NOW + timedelta(minutes=minutes))
            seen.append(result.locked_until is not None)
        return seen

    expected = [False] * 8 + [True, True]  # the fifth failure within 15 minutes locks
    assert pattern(STAFF) == pattern("nobody@example.org") == expected
    after = users.log_in(engine, STAFF, PASSWORD, now=NOW + timedelta(minutes=40))
    assert after.ok  # 15 minutes after the fifth failure


def _sign_ups(site: Served, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=site.url) as client:
        return [
            client.post(
                "/subscribe",
                content=f"email=p{i}%40example.org&list=weekly",
                headers={**FORM, "X-Forwarded-For": ip},
            ).status_code
            for i, ip in enumerate(forwarded)
        ]


def test_a_forged_forwarded_for_does_not_escape_the_sign_up_limit(make_project) -> None:
    project = make_project()
    changing = [f"203.0.113.{i}" for i in range(12)]
    with Served(_app(project)) as site:
        assert _sign_ups(site, changing) == [200] * 10 + [429] * 2


def test_a_trusted_proxy_names_the_client(make_project) -> None:
    project = make_project('\n[web]\ntrusted_proxies = ["127.0.0.1"]\n')
    changing = [f"203.0.113.{i}" for i in range(12)]
    with Served(_app(project)) as site:
        assert _sign_ups(site, changing) == [200] * 12
        assert _sign_ups(site, ["198.51.100.7"] * 11)[-1] == 429  # one client, one bucket


def _console(project) -> TestClient:
    users.add_user(project.engine(), STAFF, PASSWORD, who="test", now=datetime.now(UTC))
    return _logged_in(project, _app(project))


def _logged_in(project, ctx: App) -> TestClient:
    client = TestClient(create_app(ctx), base_url="https://testserver", follow_redirects=False)
    page = client.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    answer = client.post("/admin/login", data={"csrf": csrf, "email": STAFF, "password": PASSWORD})
    assert answer.status_code == 303
    return client


def _upload(client: TestClient, name: str, data: bytes):
    page = client.get("/admin/subscribers/import")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    return client.post(
        "/admin/subscribers/import",
        data={"csrf": csrf, "list": "weekly"},
        files={"file": (name, data, "text/csv")},
    )


def test_a_huge_import_report_shows_the_first_thousand_problems(make_project) -> None:
    client = _console(make_project())
    bad = "email\n" + "".join(f"not-an-address-{i}\n" for i in range(30_000))
    answer = _upload(client, "bad.csv", bad.encode())
    assert answer.status_code == 200
    assert "rejected 30000" in answer.text
    assert answer.text.count(": rejected: ") == 1000
    assert "and 29000 more rejected row(s), not shown" in answer.text
    assert len(answer.content) < 400_000


@pytest.mark.parametrize("name", ["..", ".", "../../etc/passwd", "a/../../b.csv", "\x00.csv"])
def test_an_uploaded_file_name_is_never_a_path(make_project, name: str) -> None:
    project = make_project()
    client = _console(project)
    answer = _upload(client, name, b"email\nup@example.org\n")
    assert answer.status_code == 200 and "added 1" in answer.text
    assert details(project.engine(), "up@example.org").status == "active"


def test_pages_with_an_address_or_staff_work_are_never_cached(make_project) -> None:
    project = make_project()
    client = _console(project)
    keys = Keyring(KEY.encode())
    private = [
        "/admin",
        "/admin/login",
        "/admin/subscribers",
        f"/p/{keys.make('preferences', 1, 'weekly', now=NOW)}",
        f"/u/{keys.make('unsubscribe', 1, 'weekly', now=NOW)}",
        f"/c/{keys.make('confirm', 1, 'weekly', now=datetime.now(UTC))}",
    ]
    for path in private:
        assert client.get(path).headers.get("cache-control") == "no-store", path
    for path in ("/subscribe", "/archive"):
        answer = client.get(path)
        assert "no-store" not in answer.headers.get("cache-control", ""), path
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_data_folder_and_database_are_the_owners_alone(make_project) -> None:
    project = make_project()
    project.engine()
    var = project.folder / "var"
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for path in var.glob("digest.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


@pytest.mark.parametrize("stamp", [1e20, "1e20", -1e20, float("inf"), [], "soon"])
def test_a_webhook_event_at_an_impossible_time_is_a_400_and_stores_nothing(
    make_project, stamp: object
) -> None:
    import base64
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    project = make_project()
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ctx = App(
        project.settings(),
        project.engine(),
        Secrets(secret_key=KEY, webhook_public_key=base64.b64encode(public).decode()),
    )
    good = {"sg_event_id": "e1", "event": "delivered", "email": "a@example.org", "timestamp": 1}
    odd = {**good, "sg_event_id": "e2", "timestamp": stamp}
    body = json.dumps([good, odd]).encode()
    when = str(int(time.time()))
    signature = private.sign(when.encode() + body, ec.ECDSA(hashes.SHA256()))
    answer = TestClient(create_app(ctx)).post(
        "/webhooks/sendgrid",
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": when,
        },
    )
    assert answer.status_code == 400
    with project.engine().connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(delivery_events)).scalar() == 0


def test_a_closed_output_ends_a_command_quietly_with_141(make_project) -> None:
    from tests.conftest import EXAMPLE_SOURCES

    project = make_project(EXAMPLE_SOURCES)
    env = {**os.environ, "DIGEST_SECRET_KEY": KEY}
    read, write = os.pipe()
    os.close(read)  # nobody will read what it prints
    try:
        done = subprocess.run(
            [sys.executable, "-m", "digest", "build", "--force", "--config", str(project.config)],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == b""
