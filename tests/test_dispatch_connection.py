"""A batch goes out on its thread's kept-alive connection, and what became of it is told
as before: retried only when SendGrid cannot have had it whole, uncertain when it went
out and no answer came, never another request's answer taken for its own."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sendgrid import SendGridAPIClient

from digest.audience.tokens import Keyring
from digest.dispatch import connection
from digest.dispatch.batch import LedgerPeople, OutgoingBatch
from digest.dispatch.personal import LinkMaker
from digest.dispatch.sendgrid import SendGridTransport, build_payload, encode_payload
from digest.models import RenderedEmail
from tests.golden_edition import golden_settings

KEYS = Keyring(b"a-test-signing-key-0123456789")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ROWS = [
    (1, "ana@example.org", "Ana Lima", "weekly"),
    (2, "bo@example.org", "", "weekly"),
]
API_KEY = "SG.connection-test"


class Scripted(ThreadingHTTPServer):
    """Answers each POST as the next word of ``script`` says ("ok" when it runs out):
    ok (202, kept alive), close (202 with Connection: close), hangup (202, then the
    server closes the connection), drop (the body read, no answer), late (202 after
    ``late`` seconds). Keeps each request's connection number, target and headers."""

    daemon_threads = True

    def __init__(self, script: list[str], late: float = 0.0) -> None:
        self.script, self.late = list(script), late
        self.connections = 0
        self.seen: list[tuple[int, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Scripted
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.number = self.server.connections

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.seen.append((self.number, self.path, dict(self.headers)))
            word = self.server.script.pop(0) if self.server.script else "ok"
            count = len(self.server.seen)
        if word == "drop":
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)
            return
        if word == "late":
            time.sleep(self.server.late)
        self.send_response(202)
        self.send_header("X-Message-Id", f"{word}-{count}")
        self.send_header("Content-Length", "0")
        if word == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        if word == "hangup":
            self.wfile.flush()
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Scripted]:
    script, late = getattr(request, "param", ([], 0.0))
    httpd = Scripted(script, late)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _transport(url: str, timeout: float = 2.0) -> SendGridTransport:
    settings = golden_settings()
    settings.delivery.timeout_seconds = timeout
    return SendGridTransport(settings, API_KEY, url)


def _batch(seq: int = 1) -> OutgoingBatch:
    email = RenderedEmail("This week", "<p>-unsubscribe_url-</p>", "-unsubscribe_url-")
    people = LedgerPeople(ROWS, LinkMaker.at(golden_settings(), KEYS, NOW), "html")
    return OutgoingBatch("2026-W48", seq, "html", email, people)


def test_batches_share_one_connection_with_the_official_clients_headers(
    server: Scripted,
) -> None:
    transport = _transport(server.url + "/")
    outcomes = [transport.send(_batch(seq)) for seq in range(1, 6)]
    assert [o.kind for o in outcomes] == ["accepted"] * 5
    assert [o.message_id for o in outcomes] == [f"ok-{i}" for i in range(1, 6)]
    assert server.connections == 1
    official = SendGridAPIClient(api_key=API_KEY).client.request_headers
    for _, target, headers in server.seen:
        assert target == "/v3/mail/send"
        assert headers["Authorization"] == f"Bearer {API_KEY}"
        assert headers["User-Agent"] == official["User-Agent"]
        assert headers["Content-Type"] == "application/json; charset=utf-8"


def test_the_bytes_posted_are_the_payload_encoded() -> None:
    got: list[bytes] = []

    class Capture(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        transport = _transport(f"http://127.0.0.1:{httpd.server_address[1]}")
        assert transport.send(_batch()).kind == "accepted"
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert got == [encode_payload(build_payload(golden_settings(), _batch()))]


@pytest.mark.parametrize("server", [(["close", "hangup"], 0.0)], indirect=True)
def test_a_connection_the_server_closed_is_opened_again_and_nothing_is_uncertain(
    server: Scripted,
) -> None:
    transport = _transport(server.url)
    first = transport.send(_batch(1))  # answered with Connection: close
    second = transport.send(_batch(2))  # answered, then the server hangs up
    time.sleep(0.2)  # the close reaches us while the connection sits idle
    third = transport.send(_batch(3))
    assert [o.kind for o in (first, second, third)] == ["accepted"] * 3
    assert [number for number, _, _ in server.seen] == [1, 2, 3]


def test_an_idle_connection_is_not_reused_after_a_while(
    server: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = _transport(server.url)
    assert transport.send(_batch(1)).kind == "accepted"
    assert transport.send(_batch(2)).kind == "accepted"
    monkeypatch.setattr(connection, "IDLE_REUSE", 0.0)
    assert transport.send(_batch(3)).kind == "accepted"
    assert [number for number, _, _ in server.seen] == [1, 1, 2]


@pytest.mark.parametrize("server", [(["drop"], 0.0)], indirect=True)
def test_a_request_that_went_out_without_an_answer_is_uncertain(server: Scripted) -> None:
    transport = _transport(server.url)
    dropped = transport.send(_batch(1))
    assert dropped.kind == "uncertain"
    assert "no answer after sending" in dropped.reason
    assert transport.send(_batch(2)).kind == "accepted"  # on a new connection
    assert server.connections == 2


@pytest.mark.parametrize("server", [(["late"], 1.0)], indirect=True)
def test_an_answer_after_the_timeout_is_never_taken_for_the_next_batch(
    server: Scripted,
) -> None:
    transport = _transport(server.url, timeout=0.3)
    assert transport.send(_batch(1)).kind == "uncertain"
    time.sleep(1.0)  # the late 202 has been written by now
    second = transport.send(_batch(2))
    assert second.kind == "accepted"
    assert second.message_id == "ok-2"


def test_no_server_is_a_retry() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    silent.close()  # nobody listens there now
    refused = _transport(f"http://127.0.0.1:{port}").send(_batch())
    assert refused.kind == "retry"
    assert "could not reach SendGrid" in refused.reason


def test_an_http_proxy_from_the_environment_is_used(
    server: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", "http://user:secret@" + server.url.removeprefix("http://"))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    transport = _transport("http://sendgrid.invalid:8080/base")
    assert transport.send(_batch(1)).kind == "accepted"
    assert transport.send(_batch(2)).kind == "accepted"
    (_, target, headers), _ = server.seen
    assert target == "http://sendgrid.invalid:8080/base/v3/mail/send"
    assert headers["Host"] == "sendgrid.invalid:8080"
    assert headers["Proxy-Authorization"] == "Basic dXNlcjpzZWNyZXQ="
    assert server.connections == 1


def test_a_host_that_is_no_url_is_a_retry_not_an_uncertain_batch() -> None:
    outcome = _transport("localhost:8080").send(_batch())
    assert outcome.kind == "retry"
    assert "not an http(s) URL" in outcome.reason
