"""Sending through SendGrid (a real local fake): exactly once, whatever the API does."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import sqlalchemy as sa

from digest.audience.tokens import Keyring
from digest.cli import app
from digest.store.tables import suppressions
from tests.conftest import NOW
from tests.fake_sendgrid import mail_send_schema
from tests.sendgrid_setup import API_KEY, KEY, prepare


def _project(make_project, tmp_path: Path, monkeypatch, fake, people: int, batch: int = 1000):
    return prepare(make_project, tmp_path, monkeypatch, fake.url, people, batch=batch)


def _status(runner, cfg) -> dict:
    result = runner.invoke(app, ["status", "--json", *cfg])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_recipient_once_through_429s_and_500s(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    _, runner, cfg = _project(make_project, tmp_path, monkeypatch, fake, 5000, batch=250)
    # The fake deals its seeded faults in request order, so which batch draws which depends
    # on the threads' timing: the last batch left can draw a long run of them. Twelve tries
    # (not eight) keep that from failing a test about recovering, not about giving up.
    monkeypatch.setenv("DIGEST_DELIVERY__MAX_ATTEMPTS", "12")
    fake.faults.rate_limit, fake.faults.server_error = 0.2, 0.1
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    counts = fake.accepted_counts()
    assert len(counts) == 5000 and set(counts.values()) == {1}
    assert len(fake.requests) > 21  # the faults fired: more requests than batches
    state = _status(runner, cfg)
    assert state["recipients"]["accepted"] == 5000
    assert state["batches"]["accepted"] == 18 + 3  # 4,285 html and 715 text, 250 a batch
    assert state["failures"] == []


def test_every_request_matches_sendgrids_schema_and_is_personal(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    schema = mail_send_schema()
    _, runner, cfg = _project(make_project, tmp_path, monkeypatch, fake, 30, batch=10)
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    keys = Keyring(KEY.encode())
    seen_urls = set()
    for body in fake.requests:
        jsonschema.validate(body, schema)
        assert body["custom_args"]["digest_edition"] == "2026-W48"
        assert body["tracking_settings"]["click_tracking"]["enable"] is False
        assert body["tracking_settings"]["open_tracking"]["enable"] is False
        assert body["content"][0]["type"] == "text/plain"
        for p in body["personalizations"]:
            url = p["substitutions"]["-unsubscribe_url-"]
            assert url not in seen_urls
            seen_urls.add(url)
            assert p["headers"]["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")
            assert p["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            claims = keys.check(url.rsplit("/", 1)[1], "unsubscribe", now=NOW)
            assert claims is not None
    assert len(seen_urls) == 30
    text_only = [b for b in fake.requests if len(b["content"]) == 1]
    assert text_only and all(len(b["personalizations"]) <= 10 for b in fake.requests)


def test_suppressed_and_unsubscribed_get_nothing(make_project, tmp_path, monkeypatch, fake) -> None:
    fake.suppressions["bounces"] = ["person1@example.org"]
    fake.suppressions["spam_reports"] = ["PERSON2@example.org"]
    project, runner, cfg = _project(make_project, tmp_path, monkeypatch, fake, 10)
    assert runner.invoke(app, ["subscribers", "remove", "person3@example.org", *cfg]).exit_code == 0
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    got = set(fake.accepted_counts())
    assert got == {f"person{i}@example.org" for i in range(10)} - {
        "person1@example.org",
        "person2@example.org",
        "person3@example.org",
    }
    with project.engine().connect() as conn:
        rows = conn.execute(sa.select(suppressions.c.email_key, suppressions.c.reason)).all()
        reasons = {key: reason for key, reason in rows}
    assert reasons["person1@example.org"] == "bounce"
    assert reasons["person2@example.org"] == "spam report"


def test_a_bad_key_stops_everything_with_a_message(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    _, runner, cfg = _project(make_project, tmp_path, monkeypatch, fake, 20, batch=5)
    fake.faults.status_override = 401
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1
    assert "SENDGRID_API_KEY" in result.output and API_KEY not in result.output
    state = _status(runner, cfg)
    assert state["recipients"]["pending"] == 20 and state["recipients"]["accepted"] == 0
    fake.faults.status_override = None
    again = runner.invoke(app, ["send", "--yes", *cfg])
    assert again.exit_code == 0, again.output
    assert len(fake.accepted_counts()) == 20


def test_a_400_keeps_sendgrids_own_words(make_project, tmp_path, monkeypatch, fake) -> None:
    _, runner, cfg = _project(make_project, tmp_path, monkeypatch, fake, 4)
    fake.faults.status_override = 400
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1
    state = _status(runner, cfg)
    assert state["batches"]["failed"] == 2
    assert "does not contain a valid address" in state["failures"][0]["reason"]
    text = runner.invoke(app, ["status", *cfg]).output
    assert "does not contain a valid address" in text and "digest send" in text


def test_a_413_splits_the_batch_until_it_fits(make_project, tmp_path, monkeypatch, fake) -> None:
    _, runner, cfg = _project(make_project, tmp_path, monkeypatch, fake, 900)
    fake.faults.max_personalizations = 300
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 0, result.output
    counts = fake.accepted_counts()
    assert len(counts) == 900 and set(counts.values()) == {1}
    taken = {p["_request"] for p in fake.accepted}
    assert all(len(fake.requests[n - 1]["personalizations"]) <= 300 for n in taken)
    assert max(len(b["personalizations"]) for b in fake.requests) > 300  # a 413 came first


def test_dropped_connections_are_uncertain_and_never_resent(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    _, runner, cfg = _project(make_project, tmp_path, monkeypatch, fake, 2000, batch=50)
    fake.faults.drop_after_accept = 0.3
    result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1  # not everyone is known to be accepted
    counts = fake.accepted_counts()
    assert len(counts) == 2000 and set(counts.values()) == {1}
    state = _status(runner, cfg)
    assert state["batches"]["uncertain"] > 0
    assert state["recipients"]["uncertain"] + state["recipients"]["accepted"] == 2000
    assert all(f["reason"].startswith("uncertain:") for f in state["failures"])
    again = runner.invoke(app, ["send", "--yes", *cfg])
    assert set(fake.accepted_counts().values()) == {1}
    assert "--resend-uncertain" in again.output
    fake.faults.drop_after_accept = 0
    forced = runner.invoke(app, ["send", "--yes", "--resend-uncertain", *cfg])
    assert forced.exit_code == 0, forced.output
    assert _status(runner, cfg)["recipients"]["accepted"] == 2000


def test_scheduled_and_console_sends_pull_sendgrids_suppressions_first(
    make_project, tmp_path, monkeypatch, fake
) -> None:
    from digest.lifecycle.sending import send

    fake.suppressions["bounces"] = ["person1@example.org"]
    project, _, _ = _project(make_project, tmp_path, monkeypatch, fake, 5)
    send(project.app(NOW), "2026-W48", who="scheduler", notify=True)
    got = set(fake.accepted_counts())
    assert got == {f"person{i}@example.org" for i in (0, 2, 3, 4)}
    assert fake.suppression_requests  # SendGrid's lists were read before the send


def test_a_payload_is_json_even_with_text_orjson_refuses() -> None:
    from digest.dispatch.sendgrid import encode_payload

    plain = {"subject": "Zoë’s “week”", "personalizations": [{"to": [{"email": "a@b.org"}]}]}
    assert json.loads(encode_payload(plain)) == plain
    broken = {"subject": "half a pair \ud800 of surrogates"}  # a feed's bad escape
    assert json.loads(encode_payload(broken)) == broken
