"""The fake SendGrid itself, driven by the official ``sendgrid`` client over loopback.

These also pin down how that client reports each outcome, which the transport relies on:
HTTP errors are ``python_http_client`` exceptions; a refused connection is a
``urllib.error.URLError``; a dropped connection or a read timeout after the body went out
is a bare ``OSError`` subclass (``http.client.RemoteDisconnected``, ``TimeoutError``).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    ForbiddenError,
    HTTPError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient

from tests.fake_sendgrid import SPEC_PATH, FakeSendGrid, Faults, mail_send_schema

KEY = "SG.test-key"


def client(fake: FakeSendGrid, key: str = KEY, timeout: float = 2) -> SendGridAPIClient:
    """The official client, pointed at the fake, never waiting forever."""
    sg = SendGridAPIClient(api_key=key, host=fake.url)
    sg.client.timeout = timeout
    return sg


def personalization(email: str, name: str = "Ada") -> dict[str, Any]:
    """One recipient, the way the digest writes them."""
    token = "tok-" + email.split("@")[0]
    return {
        "to": [{"email": email, "name": name}],
        "headers": {
            "List-Unsubscribe": (
                f"<https://digest.example.org/u/{token}>, "
                f"<mailto:unsubscribe@example.org?subject={token}>"
            ),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "substitutions": {
            "-unsubscribe_url-": f"https://digest.example.org/u/{token}",
            "-preferences_url-": f"https://digest.example.org/p/{token}",
            "-name-": name,
        },
        "custom_args": {"digest_recipient": token},
    }


def payload(*emails: str, **top: Any) -> dict[str, Any]:
    """A typical digest request body; ``top`` overrides top-level keys (None deletes one)."""
    body: dict[str, Any] = {
        "personalizations": [personalization(e) for e in emails or ("ada@example.org",)],
        "from": {"email": "news@coalition.example.org", "name": "Test Coalition"},
        "reply_to": {"email": "news@coalition.example.org"},
        "subject": "This week: 2026-W48",
        "content": [
            {"type": "text/plain", "value": "Hello -name-. Unsubscribe: -unsubscribe_url-"},
            {"type": "text/html", "value": "<p>Hello -name-</p><a href='-unsubscribe_url-'>x</a>"},
        ],
        "categories": ["digest", "2026-W48"],
        "custom_args": {"digest_edition": "2026-W48", "digest_batch": "0001"},
        "asm": {"group_id": 42, "groups_to_display": [42]},
        "tracking_settings": {
            "click_tracking": {"enable": False, "enable_text": False},
            "open_tracking": {"enable": False},
        },
        "mail_settings": {"sandbox_mode": {"enable": False}},
    }
    for key, value in top.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as running:
        yield running
    assert running.crashes() == []  # no handler crashed


def test_a_valid_request_is_accepted_and_recorded(fake: FakeSendGrid) -> None:
    body = payload("ada@example.org", "Bob@Example.org")
    response = client(fake).send(body)
    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert message_id
    assert fake.requests == [body]
    assert [p["to"][0]["email"] for p in fake.accepted] == ["ada@example.org", "Bob@Example.org"]
    assert {p["_message_id"] for p in fake.accepted} == {message_id}
    assert {p["_request"] for p in fake.accepted} == {1}
    assert fake.accepted[0]["headers"] == body["personalizations"][0]["headers"]
    assert fake.accepted_counts() == {"ada@example.org": 1, "bob@example.org": 1}
    second = client(fake).send(payload("ada@example.org"))
    assert second.headers["X-Message-Id"] != message_id
    assert fake.accepted[-1]["_request"] == 2
    assert fake.accepted_counts()["ada@example.org"] == 2


def test_a_wrong_key_is_unauthorized(fake: FakeSendGrid) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        client(fake, key="SG.wrong").send(payload())
    assert caught.value.status_code == 401
    error = caught.value.to_dict["errors"][0]
    assert error["message"] == "The provided authorization grant is invalid, expired, or revoked"
    assert error["field"] is None
    assert fake.accepted == []
    assert len(fake.requests) == 1  # recorded, though refused


def test_a_duplicate_recipient_is_refused_by_name(fake: FakeSendGrid) -> None:
    with pytest.raises(BadRequestsError) as caught:
        client(fake).send(payload("ada@example.org", "bob@example.org", "ADA@example.org"))
    error = caught.value.to_dict["errors"][0]
    assert "ada@example.org" in error["message"]
    assert "unique" in error["message"]
    assert error["field"] == "personalizations.2.to.0"
    assert b"duplicate" in caught.value.body
    assert fake.accepted == []


def _too_many_substitutions() -> dict[str, Any]:
    p = personalization("ada@example.org")
    p["substitutions"] = {f"-k{i}-": "v" * 100 for i in range(100)}
    return {"personalizations": [p]}


BAD_BODIES: dict[str, tuple[dict[str, Any], str | None]] = {
    "no personalizations": ({"personalizations": []}, "personalizations"),
    "1001 personalizations": (
        {"personalizations": [{"to": [{"email": f"r{i}@example.org"}]} for i in range(1001)]},
        "personalizations",
    ),
    "no to": ({"personalizations": [{"to": []}]}, "personalizations.0.to"),
    "no email": ({"personalizations": [{"to": [{"name": "x"}]}]}, "personalizations.0.to.0"),
    "bad email": (
        {"personalizations": [{"to": [{"email": "not-an-address"}]}]},
        "personalizations.0.to.0.email",
    ),
    "no from": ({"from": None}, "from"),
    "bad from": ({"from": {"email": "nobody"}}, "from.email"),
    "no subject": ({"subject": None}, "subject"),
    "no content": ({"content": []}, "content"),
    "html before text": (
        {
            "content": [
                {"type": "text/html", "value": "<p>x</p>"},
                {"type": "text/plain", "value": "x"},
            ]
        },
        "content",
    ),
    "substitutions over 10,000 bytes": (
        _too_many_substitutions(),
        "personalizations.0.substitutions",
    ),
    "custom_args over 10,000 bytes": (
        {"custom_args": {"big": "x" * 10_000}},
        "personalizations.0.custom_args",
    ),
    "a number in custom_args": ({"custom_args": {"digest_batch": 1}}, "custom_args.digest_batch"),
    "reserved header": (
        {"personalizations": [{"to": [{"email": "a@example.org"}], "headers": {"reply-to": "x"}}]},
        "personalizations.0.headers",
    ),
    "eleven categories": ({"categories": [f"c{i}" for i in range(11)]}, "categories"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_an_invalid_body_is_refused_with_the_field(fake: FakeSendGrid, case: str) -> None:
    top, field = BAD_BODIES[case]
    with pytest.raises(BadRequestsError) as caught:
        client(fake).send(payload(**top))
    errors = caught.value.to_dict["errors"]
    assert errors[0]["field"] == field
    assert errors[0]["message"]
    assert errors[0]["help"] is None
    assert fake.accepted == []


def test_a_subject_in_every_personalization_is_enough(fake: FakeSendGrid) -> None:
    body = payload("a@example.org", "b@example.org", subject=None)
    for p in body["personalizations"]:
        p["subject"] = "Hi"
    assert client(fake).send(body).status_code == 202
    body["personalizations"][1].pop("subject")
    with pytest.raises(BadRequestsError):
        client(fake).send(body)


def test_a_body_that_is_not_json_is_refused(fake: FakeSendGrid) -> None:
    sg = client(fake)
    sg.client.request_headers["Content-Type"] = "text/plain"  # the client then sends it as is
    with pytest.raises(BadRequestsError):
        sg.client.mail.send.post(request_body="{not json")
    assert fake.requests == []


def test_a_body_over_30_mb_is_too_large(fake: FakeSendGrid) -> None:
    body = payload(content=[{"type": "text/plain", "value": "x" * (30 * 1024 * 1024)}])
    with pytest.raises(PayloadTooLargeError):
        client(fake, timeout=10).send(body)
    assert fake.accepted == []


def test_429_carries_the_reset_time(fake: FakeSendGrid) -> None:
    fake.faults = Faults(rate_limit=1.0, reset_in=30)
    with pytest.raises(TooManyRequestsError) as caught:
        client(fake).send(payload())
    reset = int(caught.value.headers.get("X-RateLimit-Reset"))
    assert time.time() + 28 <= reset <= time.time() + 31
    assert caught.value.headers.get("Retry-After") == "30"
    assert caught.value.headers.get("X-RateLimit-Remaining") == "0"
    assert fake.accepted == []


def test_server_error_accepts_nothing(fake: FakeSendGrid) -> None:
    fake.faults = Faults(server_error=1.0)
    with pytest.raises(InternalServerError):
        client(fake).send(payload())
    assert fake.accepted == []


def test_413_above_max_personalizations(fake: FakeSendGrid) -> None:
    fake.faults = Faults(max_personalizations=2)
    with pytest.raises(PayloadTooLargeError) as caught:
        client(fake).send(payload("a@example.org", "b@example.org", "c@example.org"))
    assert caught.value.status_code == 413
    assert fake.accepted == []
    assert client(fake).send(payload("a@example.org", "b@example.org")).status_code == 202
    assert len(fake.accepted) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequestsError), (401, UnauthorizedError), (403, ForbiddenError)],
)
def test_status_override(fake: FakeSendGrid, status: int, error: type[HTTPError]) -> None:
    fake.faults = Faults(status_override=status)
    with pytest.raises(error) as caught:
        client(fake).send(payload())
    assert caught.value.status_code == status
    if status == 400:
        assert caught.value.to_dict["errors"][0]["field"] == "from.email"
        assert "valid address" in caught.value.to_dict["errors"][0]["message"]
    assert fake.accepted == []


def test_a_drop_after_accept_is_a_disconnect_not_an_http_error(fake: FakeSendGrid) -> None:
    fake.faults = Faults(drop_after_accept=1.0)
    with pytest.raises(OSError) as caught:
        client(fake).send(payload("a@example.org", "b@example.org"))
    # The body went out, so urllib does not wrap it in URLError.
    assert type(caught.value) is http.client.RemoteDisconnected
    assert isinstance(caught.value, ConnectionResetError)
    assert not isinstance(caught.value, urllib.error.URLError | HTTPError)
    assert fake.accepted_counts() == {"a@example.org": 1, "b@example.org": 1}


def test_a_timeout_after_accept_is_a_bare_timeout_error(fake: FakeSendGrid) -> None:
    fake.faults = Faults(timeout_after_accept=1.0, hang_seconds=3)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        client(fake, timeout=1).send(payload())
    assert time.monotonic() - started < 2.5
    assert type(caught.value) is TimeoutError
    assert not isinstance(caught.value, urllib.error.URLError)
    assert fake.accepted_counts() == {"ada@example.org": 1}


def test_a_refused_connection_is_a_url_error() -> None:
    fake = FakeSendGrid().start()
    fake.stop()  # its port is now closed
    with pytest.raises(urllib.error.URLError) as caught:
        client(fake).send(payload())
    assert isinstance(caught.value.reason, ConnectionRefusedError)


def test_the_client_timeout_also_bounds_get_requests() -> None:
    # A socket that listens but never answers: the connection succeeds, no reply comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        sg = SendGridAPIClient(api_key=KEY, host=f"http://127.0.0.1:{silent.getsockname()[1]}")
        sg.client.timeout = 0.3
        with pytest.raises(TimeoutError):
            sg.client.suppression.bounces.get(query_params={"limit": 2})


def test_latency_delays_the_answer(fake: FakeSendGrid) -> None:
    fake.faults = Faults(latency=0.3)
    started = time.monotonic()
    client(fake).send(payload())
    assert time.monotonic() - started >= 0.3


def _outcomes(seed: int) -> list[str]:
    outcomes = []
    with FakeSendGrid(faults=Faults(rate_limit=0.3, server_error=0.3, seed=seed)) as fake:
        for i in range(12):
            try:
                client(fake).send(payload(f"r{i}@example.org"))
                outcomes.append("202")
            except HTTPError as error:
                outcomes.append(str(error.status_code))
    return outcomes


def test_faults_are_repeatable_for_a_seed() -> None:
    first = _outcomes(seed=3)
    assert first == _outcomes(seed=3)
    assert {"202", "429", "500"} <= set(first)


def test_concurrent_requests_are_all_recorded(fake: FakeSendGrid) -> None:
    ids: list[str] = []

    def send(worker: int) -> None:
        for i in range(5):
            response = client(fake).send(payload(f"w{worker}-{i}@example.org"))
            ids.append(response.headers["X-Message-Id"])

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 40
    assert len(fake.accepted) == 40
    assert sorted(p["_request"] for p in fake.accepted) == list(range(1, 41))
    assert set(fake.accepted_counts().values()) == {1}


def test_suppressions_paginate() -> None:
    emails = [f"b{i}@example.org" for i in range(5)]
    with FakeSendGrid(api_key=KEY, suppressions={"bounces": emails}) as fake:
        bounces = client(fake).client.suppression.bounces
        pages = []
        offset = 0
        while True:
            page = bounces.get(query_params={"limit": 2, "offset": offset}).to_dict
            if not page:
                break
            pages.append(page)
            offset += 2
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [entry["email"] for page in pages for entry in page] == emails
    assert set(pages[0][0]) == {"created", "email", "reason", "status"}
    assert fake.suppression_requests[:3] == [
        "/v3/suppression/bounces?limit=2&offset=0",
        "/v3/suppression/bounces?limit=2&offset=2",
        "/v3/suppression/bounces?limit=2&offset=4",
    ]


def test_each_suppression_list_has_its_shape() -> None:
    lists = {kind: ["x@example.org"] for kind in ("spam_reports", "invalid_emails", "unsubscribes")}
    with FakeSendGrid(api_key=KEY, suppressions=lists) as fake:
        suppression = client(fake).client.suppression
        assert set(suppression.spam_reports.get().to_dict[0]) == {"created", "email", "ip"}
        assert set(suppression.invalid_emails.get().to_dict[0]) == {"created", "email", "reason"}
        assert suppression.unsubscribes.get().to_dict == [
            {"created": 1443651125, "email": "x@example.org"}
        ]
        assert suppression.bounces.get().to_dict == []
        with pytest.raises(UnauthorizedError):
            client(fake, key="SG.wrong").client.suppression.bounces.get()
        with pytest.raises(NotFoundError) as caught:
            suppression.blocks.get()
        assert json.loads(caught.value.body)["errors"]


def test_an_unknown_path_is_a_json_404(fake: FakeSendGrid) -> None:
    with pytest.raises(NotFoundError) as caught:
        client(fake).client.templates.get()
    assert caught.value.to_dict["errors"][0]["message"]


def test_the_valid_payload_matches_the_openapi_schema() -> None:
    schema = mail_send_schema()
    jsonschema.validate(payload("ada@example.org", "bob@example.org"), schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema is not vacuous
        jsonschema.validate(payload(personalizations=[{"cc": []}]), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload(categories=["same", "same"]), schema)


def test_the_spec_still_types_top_level_custom_args_as_a_string() -> None:
    # If this fails, SendGrid fixed the spec: drop SPEC_ERRATA from tests/fake_sendgrid.py.
    mail_send_schema()  # skips when the corpus is missing
    document = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    raw = document["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]
    assert raw["schema"]["properties"]["custom_args"]["type"] == "string"
