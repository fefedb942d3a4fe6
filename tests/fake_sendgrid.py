"""A fake SendGrid v3 API: a real HTTP server on 127.0.0.1, run in a background thread.

Point the SendGrid transport at ``FakeSendGrid.url`` (what ``DIGEST_SENDGRID_HOST`` takes) and
the official ``sendgrid`` client talks to it over loopback like it would to api.sendgrid.com:

    with FakeSendGrid(faults=Faults(rate_limit=0.2)) as fake:
        sg = SendGridAPIClient(api_key="SG.test-key", host=fake.url)
        sg.client.timeout = 2
        sg.send(payload)
        assert fake.accepted_counts()["ada@example.org"] == 1

``POST /v3/mail/send`` checks the key, validates the body the way the real API does (400 with
SendGrid-style errors, 413 above 30 MB) and then applies the ``Faults``: latency,
a forced status, a personalization cap (413), and one random draw among 429, 500,
"accepted then the connection dropped" and "accepted then no answer until the client
times out". The last two are the cases where a batch's outcome is uncertain: the fake
has recorded it as accepted, the client saw no response.

``GET /v3/suppression/{bounces,spam_reports,invalid_emails,unsubscribes}`` serve the
suppressions given to the constructor, paginated with ``limit`` and ``offset``.

``GET /v3/scopes`` answers the key's ``scopes`` (default: it may send, read suppressions and
read sender authentication); ``GET /v3/whitelabel/domains`` the authenticated ``domains``
(default: one, ``coalition.example.org``, valid, made by ``authenticated_domain``), paginated
the same way, and 403 without the ``whitelabel.read`` scope, as the real API does.
``POST /v3/mail/send`` is 403 without ``mail.send``. Scheduled sends (``send_at``,
``batch_id``, ``POST /v3/mail/batch`` and ``/v3/user/scheduled_sends``) are in
``tests/fake_schedules.py``: ``schedules`` holds the ids and their cancels.

``mail_send_schema()`` loads the request schema of ``POST /v3/mail/send`` from the
SendGrid OpenAPI file in the shared corpus, ``$ref``s resolved, for ``jsonschema``;
``response_schema(file, path)`` the 200 answer's schema of any GET in another file there.
"""

from __future__ import annotations

import base64
import collections
import copy
import functools
import json
import math
import random
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from tests.fake_schedules import BATCH_PATH, SCHEDULED_PATH, ScheduleRefused, Schedules

MAIL_SEND_PATH = "/v3/mail/send"
SUPPRESSION_PREFIX = "/v3/suppression/"
SUPPRESSION_KINDS = ("bounces", "spam_reports", "invalid_emails", "unsubscribes")
SCOPES_PATH = "/v3/scopes"
DOMAINS_PATH = "/v3/whitelabel/domains"
DEFAULT_SCOPES = ("mail.send", "suppression.read", "whitelabel.read")
SENDER_DOMAIN = "coalition.example.org"  # the domain of tests.conftest.BASE_CONFIG's sender
MAX_BODY_BYTES = 30 * 1024 * 1024
MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
DEFAULT_PAGE_LIMIT = 500
# The first `created` timestamp of the fake suppressions (the one in SendGrid's docs).
SUPPRESSION_CREATED = 1443651125
# Personalization headers SendGrid will not let a sender set (compared case-insensitively).
RESERVED_HEADERS = frozenset(
    {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type"}
    | {"content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}
)
AUTH_INVALID = "The provided authorization grant is invalid, expired, or revoked"
AUTH_MISSING = "authorization required"
FROM_INVALID_ERROR = {
    "message": "The from email does not contain a valid address.",
    "field": "from.email",
    "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.from",
}
SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sendgrid"
SPEC_PATH = SPEC_DIR / "tsg_mail_v3.json"
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


@dataclass
class Faults:
    """What the fake does wrong, and how often. Mutable while the server runs.

    The four probabilities are checked against one draw per request, cumulatively, in
    the order rate_limit, server_error, drop_after_accept, timeout_after_accept.
    """

    rate_limit: float = 0.0
    """Probability a valid POST /v3/mail/send answers 429 (nothing accepted)."""
    server_error: float = 0.0
    """Probability it answers 500 (nothing accepted)."""
    drop_after_accept: float = 0.0
    """Probability it accepts (records every personalization) and then closes the socket
    without writing a single response byte."""
    timeout_after_accept: float = 0.0
    """Probability it accepts, records, then waits ``hang_seconds`` before answering 202."""
    hang_seconds: float = 5.0
    max_personalizations: int | None = None
    """Above this many personalizations in one request: 413 (nothing accepted)."""
    latency: float = 0.0
    """Seconds to wait before applying the other faults to each valid POST."""
    status_override: int | None = None
    """Every valid POST /v3/mail/send answers this status (nothing accepted)."""
    reset_in: float = 1.0
    """For 429: ``X-RateLimit-Reset`` is ``int(time.time() + reset_in)``."""
    seed: int = 7
    """Seed of the ``random.Random`` the probabilities are drawn from."""


class _Invalid(Exception):
    """A request body the real API would refuse with 400."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _error_body(message: str, field: str | None = None, help_: str | None = None) -> bytes:
    """A SendGrid-style error body."""
    return json.dumps({"errors": [{"field": field, "message": message, "help": help_}]}).encode()


def _size(mapping: dict[str, Any]) -> int:
    """Bytes of keys plus values, UTF-8, the way SendGrid counts substitutions and args."""
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in mapping.items())


def _check_string_map(value: Any, field: str) -> dict[str, str]:
    """An object whose values are all strings (headers, substitutions, custom_args)."""
    if not isinstance(value, dict):
        raise _Invalid(f"Invalid type. Expected: object, given: {type(value).__name__}.", field)
    for key, item in value.items():
        if not isinstance(item, str):
            given = type(item).__name__
            raise _Invalid(f"Invalid type. Expected: string, given: {given}.", f"{field}.{key}")
    return value


def _check_address(entry: Any, field: str) -> str:
    """One ``{"email": ..., "name": ...}`` object; returns the address."""
    if not isinstance(entry, dict) or not isinstance(entry.get("email"), str):
        raise _Invalid("The email parameter is required for every email object.", field)
    if not _EMAIL.match(entry["email"]):
        raise _Invalid("Does not contain a valid address.", f"{field}.email")
    return str(entry["email"])


def _check_recipients(p: dict[str, Any], where: str, seen: dict[str, str]) -> None:
    """to (required, 1+), cc and bcc; every address unique across the whole request."""
    to = p.get("to")
    if not isinstance(to, list) or not to:
        raise _Invalid(
            "The to array is required for all personalization objects, and must have at "
            "least one email object with a valid email address.",
            f"{where}.to",
        )
    for kind in ("to", "cc", "bcc"):
        entries = p.get(kind, [])
        if not isinstance(entries, list):
            raise _Invalid(f"The {kind} parameter must be an array.", f"{where}.{kind}")
        for j, entry in enumerate(entries):
            field = f"{where}.{kind}.{j}"
            address = _check_address(entry, field).lower()
            if address in seen:
                raise _Invalid(
                    "Each email address in the personalizations should be unique. We found "
                    f"a duplicate of {address} in {field}, first seen in {seen[address]}.",
                    field,
                )
            seen[address] = field


def _check_personalization(p: Any, i: int, body: dict[str, Any], seen: dict[str, str]) -> None:
    """One personalization: recipients, subject, headers, substitutions, custom_args."""
    where = f"personalizations.{i}"
    if not isinstance(p, dict):
        raise _Invalid("Each personalization must be an object.", where)
    _check_recipients(p, where, seen)
    if "subject" in p and (not isinstance(p["subject"], str) or not p["subject"]):
        raise _Invalid("The subject must be a non-empty string.", f"{where}.subject")
    headers = _check_string_map(p.get("headers", {}), f"{where}.headers")
    for name in headers:
        if name.lower() in RESERVED_HEADERS:
            raise _Invalid(
                f"The header {name!r} is reserved and may not be set in personalizations.",
                f"{where}.headers",
            )
    subs = _check_string_map(p.get("substitutions", {}), f"{where}.substitutions")
    if _size(subs) > MAX_SUBSTITUTION_BYTES:
        raise _Invalid(
            "The total size of your substitutions cannot exceed 10,000 bytes per "
            "personalization object.",
            f"{where}.substitutions",
        )
    args = _check_string_map(p.get("custom_args", {}), f"{where}.custom_args")
    merged = {**body.get("custom_args", {}), **args}
    if _size(merged) > MAX_CUSTOM_ARGS_BYTES:
        raise _Invalid(
            "The total size of custom arguments cannot exceed 10,000 bytes.",
            f"{where}.custom_args",
        )


def _check_subject_and_content(body: dict[str, Any], ps: list[dict[str, Any]]) -> None:
    """A subject at the top or in every personalization; content with text/plain first."""
    templated = isinstance(body.get("template_id"), str) and bool(body["template_id"])
    subject = body.get("subject")
    if "subject" in body and (not isinstance(subject, str) or not subject):
        raise _Invalid("The subject must be a non-empty string.", "subject")
    if not templated and not subject and not all(p.get("subject") for p in ps):
        raise _Invalid(
            "The subject is required. You can get around this requirement if you use a "
            "template with a subject defined or if every personalization has a subject defined.",
            "subject",
        )
    content = body.get("content")
    if templated and content is None:
        return
    if not isinstance(content, list) or not content:
        raise _Invalid(
            "Unless a valid template_id is provided, the content parameter is required. There "
            "must be at least one defined content block.",
            "content",
        )
    for j, block in enumerate(content):
        ok = isinstance(block, dict) and all(
            isinstance(block.get(k), str) and block[k] for k in ("type", "value")
        )
        if not ok:
            raise _Invalid("Each content block needs a non-empty type and value.", f"content.{j}")
    types = [block["type"].lower() for block in content]
    if "text/plain" in types and types[0] != "text/plain":
        raise _Invalid(
            "If present, text/plain and text/x-amp-html must be first, followed by text/html, "
            "followed by any other content.",
            "content",
        )


def _check_categories(body: dict[str, Any]) -> None:
    """At most 10 unique categories of at most 255 characters."""
    categories = body.get("categories", [])
    if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES:
        raise _Invalid("You may not have more than 10 categories per request.", "categories")
    if len({str(c) for c in categories}) != len(categories):
        raise _Invalid("Categories must be unique.", "categories")
    if any(not isinstance(c, str) or len(c) > 255 for c in categories):
        raise _Invalid("A category must be a string of at most 255 characters.", "categories")


def _check_mail_send(body: Any) -> None:
    """Raise ``_Invalid`` for the first reason the real API would refuse this body."""
    if not isinstance(body, dict):
        raise _Invalid("The request body must be a JSON object.", None)
    sender = body.get("from")
    if not isinstance(sender, dict) or not isinstance(sender.get("email"), str):
        raise _Invalid(
            "The from object must be provided for every email send. It is an object that "
            "requires the email parameter, but may also contain a name parameter.",
            "from",
        )
    if not _EMAIL.match(sender["email"]):
        raise _Invalid(FROM_INVALID_ERROR["message"], "from.email")
    ps = body.get("personalizations")
    if not isinstance(ps, list) or not ps:
        raise _Invalid(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
    if len(ps) > MAX_PERSONALIZATIONS:
        raise _Invalid(
            "The personalizations field must have at most 1000 personalizations.",
            "personalizations",
        )
    if "custom_args" in body:
        _check_string_map(body["custom_args"], "custom_args")
    seen: dict[str, str] = {}
    for i, p in enumerate(ps):
        _check_personalization(p, i, body, seen)
    _check_subject_and_content(body, ps)
    _check_categories(body)


def _message_id() -> str:
    """A unique id shaped like SendGrid's (22 URL-safe base64 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _suppression_object(kind: str, email: str, created: int) -> dict[str, Any]:
    """One entry of a suppression list, in the shape the real endpoint returns."""
    if kind == "bounces":
        reason = "550 5.1.1 The email account that you tried to reach does not exist."
        return {"created": created, "email": email, "reason": reason, "status": "5.0.0"}
    if kind == "spam_reports":
        return {"created": created, "email": email, "ip": "10.63.202.100"}
    if kind == "invalid_emails":
        reason = "Mail domain mentioned in email address is unknown"
        return {"created": created, "email": email, "reason": reason}
    return {"created": created, "email": email}


def authenticated_domain(
    domain: str = SENDER_DOMAIN, *, valid: bool = True, id_: int = 1, user: str = "u7"
) -> dict[str, Any]:
    """One entry of ``GET /v3/whitelabel/domains`` as SendGrid shapes it (automatic security:
    a mail CNAME and two DKIM CNAMEs pointing into ``<user>.wl.sendgrid.net``)."""

    def record(host: str, data: str) -> dict[str, Any]:
        return {"valid": valid, "type": "cname", "host": host, "data": data}

    target = f"{user}.wl.sendgrid.net"
    return {
        "id": id_,
        "user_id": 7,
        "subdomain": "em",
        "domain": domain,
        "username": "coalition",
        "ips": [],
        "custom_spf": False,
        "default": True,
        "legacy": False,
        "automatic_security": True,
        "valid": valid,
        "dns": {
            "mail_cname": record(f"em.{domain}", target),
            "dkim1": record(f"s1._domainkey.{domain}", f"s1.domainkey.{target}"),
            "dkim2": record(f"s2._domainkey.{domain}", f"s2.domainkey.{target}"),
        },
    }


def _page(query: str, default_limit: int) -> tuple[int, int] | None:
    """``limit`` and ``offset`` of a query string; None when they are not sane integers."""
    parsed = parse_qs(query)
    try:
        limit = int(parsed.get("limit", [default_limit])[0])
        offset = int(parsed.get("offset", [0])[0])
    except ValueError:
        return None
    return (limit, offset) if limit >= 1 and offset >= 0 else None


class _Server(ThreadingHTTPServer):
    """The HTTP server, knowing its fake; handler errors go to a list, not stderr."""

    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under concurrent sends: 1 s stalls

    def __init__(self, fake: FakeSendGrid) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client that hung up (the faults make some do) is not the fake's own failure.
        if not isinstance(error, ConnectionError | TimeoutError):
            self.fake._errors.append(repr(error))


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the fake; writes responses."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read the fake's lists, not its log."""

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path in (BATCH_PATH, SCHEDULED_PATH):
            self.server.fake._schedules_call(self, path)
        elif path == MAIL_SEND_PATH:
            fake = self.server.fake
            with fake._lock:
                fake._in_progress += 1
            try:
                fake._mail_send(self)
            finally:
                with fake._lock:
                    fake._in_progress -= 1
        else:
            self.read_body()
            self.send_json(404, _error_body("resource not found"))

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == MAIL_SEND_PATH:
            self.send_json(405, _error_body("method not allowed"))
        elif path.startswith(SUPPRESSION_PREFIX):
            self.server.fake._suppressions_get(self)
        elif path in (SCOPES_PATH, DOMAINS_PATH):
            self.server.fake._account_get(self, path)
        elif path == SCHEDULED_PATH:
            self.server.fake._schedules_call(self, path)
        else:
            self.send_json(404, _error_body("resource not found"))

    def do_other(self) -> None:
        self.read_body()
        status = 405 if urlsplit(self.path).path == MAIL_SEND_PATH else 404
        self.send_json(status, _error_body(HTTPStatus(status).phrase.lower()))

    do_PUT = do_PATCH = do_DELETE = do_other

    def read_body(self) -> bytes | None:
        """The request body; None (after draining it) when it is over 30 MB."""
        length = int(self.headers.get("Content-Length") or 0)
        if length <= MAX_BODY_BYTES:
            return self.rfile.read(length)
        while length > 0:  # drain it, so the client reads our 413 rather than a reset
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)
        return None

    def authorized(self, api_key: str) -> bool:
        """Answer 401 and return False unless the request carries ``Bearer <api_key>``."""
        given = self.headers.get("Authorization")
        if given == f"Bearer {api_key}":
            return True
        self.send_json(401, _error_body(AUTH_INVALID if given else AUTH_MISSING))
        return False

    def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """A complete response with a JSON body (or none, for an empty ``body``)."""
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def drop(self) -> None:
        """Close the connection without writing a single response byte."""
        self.close_connection = True
        self.request.shutdown(socket.SHUT_RDWR)


def _rate_limit_headers(reset_in: float) -> dict[str, str]:
    """What SendGrid sends with a 429."""
    return {
        "X-RateLimit-Limit": "600",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(time.time() + reset_in)),
        "Retry-After": str(max(1, math.ceil(reset_in))),
    }


class FakeSendGrid:
    """A SendGrid v3 API on 127.0.0.1 (any free port) in a background thread.

    ``faults`` may be replaced or changed while it runs. ``accepted`` holds every accepted
    personalization in order, each with ``_message_id`` (the ``X-Message-Id`` answered) and
    ``_request`` (1-based index into ``requests``). ``requests`` holds every
    ``POST /v3/mail/send`` body that parsed as JSON, accepted or not.
    ``suppression_requests`` holds the path and query of every suppression GET;
    ``account_requests`` those of every scopes and whitelabel GET. ``scopes`` and ``domains``
    may be changed while it runs.
    """

    def __init__(
        self,
        api_key: str = "SG.test-key",
        faults: Faults | None = None,
        suppressions: dict[str, list[str]] | None = None,
        scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
        domains: list[dict[str, Any]] | None = None,
    ) -> None:
        unknown = set(suppressions or {}) - set(SUPPRESSION_KINDS)
        if unknown:
            raise ValueError(
                f"unknown suppression lists {sorted(unknown)}: use {SUPPRESSION_KINDS}"
            )
        self.api_key = api_key
        self.faults = faults if faults is not None else Faults()
        self.suppressions = {
            kind: list((suppressions or {}).get(kind, [])) for kind in SUPPRESSION_KINDS
        }
        self.scopes = list(scopes)
        self.domains = [authenticated_domain()] if domains is None else copy.deepcopy(domains)
        self.accepted: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.suppression_requests: list[str] = []
        self.account_requests: list[str] = []
        self.schedule_requests: list[str] = []
        # Check every request body in full (1); the dispatch bench checks one in N, so the
        # fake's own work does not bound what it measures.
        self.validate_every = 1
        self.schedules = Schedules()
        self._errors: list[str] = []
        self._in_progress = 0  # mail sends being answered now
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._rng = random.Random(self.faults.seed)
        self._rng_key = (id(self.faults), self.faults.seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self) -> FakeSendGrid:
        """Bind a free loopback port and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("this FakeSendGrid is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # so stop() returns at once
            name=f"fake-sendgrid-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; requests still hanging are woken and abandoned."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash; still the same port after ``stop()``."""
        if self._port is None:
            raise RuntimeError("call start() first")
        return f"http://127.0.0.1:{self._port}"

    def accepted_counts(self) -> collections.Counter[str]:
        """How many times each recipient (to, cc and bcc; lower-cased) was accepted."""
        with self._lock:
            accepted = list(self.accepted)
        return collections.Counter(
            entry["email"].lower()
            for p in accepted
            for kind in ("to", "cc", "bcc")
            for entry in p.get(kind, [])
        )

    def idle(self) -> bool:
        """No mail send is being answered (one whose client was killed still finishes)."""
        with self._lock:
            return self._in_progress == 0

    def crashes(self) -> list[str]:
        """The fake's own exceptions: a test that saw any must fail, since a crash in here
        would read as a dropped connection, which the uncertain-batch tests accept."""
        return list(self._errors)

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request handling (called from the server's threads) ---------------------------

    def _mail_send(self, h: _Handler) -> None:
        """POST /v3/mail/send: auth, size, JSON, validation, then the faults."""
        raw = h.read_body()
        body: Any = None
        number = 0
        if raw is not None:
            try:
                body = orjson.loads(raw)
            except ValueError:
                body = None
            else:
                with self._lock:
                    self.requests.append(body)
                    number = len(self.requests)
        if not h.authorized(self.api_key):
            return
        if "mail.send" not in self.scopes:
            h.send_json(403, _error_body("access forbidden"))
            return
        if raw is None:
            h.send_json(413, _error_body("The request body may not exceed 30 MB.", None))
            return
        if body is None:
            h.send_json(400, _error_body("Bad Request: the body is not valid JSON.", None))
            return
        try:
            if (number - 1) % self.validate_every == 0 or not isinstance(body, dict):
                _check_mail_send(body)
            self.schedules.check_send(body)
        except _Invalid as invalid:
            h.send_json(400, _error_body(invalid.message, invalid.field))
            return
        except ScheduleRefused as refused:
            h.send_json(400, _error_body(refused.message, refused.field))
            return
        self._apply_faults(h, body, number)

    def _apply_faults(self, h: _Handler, body: dict[str, Any], number: int) -> None:
        """Latency, status_override, max_personalizations, then one random draw."""
        faults = self.faults
        if faults.latency > 0:
            self._stopping.wait(faults.latency)
        if faults.status_override is not None:
            self._answer_override(h, faults)
            return
        count = len(body["personalizations"])
        if faults.max_personalizations is not None and count > faults.max_personalizations:
            h.send_json(413, _error_body("content too large"))
            return
        outcome = self._draw(faults)
        if outcome == "rate_limit":
            headers = _rate_limit_headers(faults.reset_in)
            h.send_json(429, _error_body("too many requests"), headers)
            return
        if outcome == "server_error":
            h.send_json(500, _error_body("internal server error"))
            return
        message_id = self._accept(body, number)
        if outcome == "drop_after_accept":
            h.drop()
            return
        if outcome == "timeout_after_accept":
            self._stopping.wait(faults.hang_seconds)
        try:
            h.send_json(202, b"", {"X-Message-Id": message_id})
        except OSError:  # the client gave up waiting: expected after a timeout
            h.close_connection = True

    def _answer_override(self, h: _Handler, faults: Faults) -> None:
        """The forced status, with the body (and headers) SendGrid sends with it."""
        status = int(faults.status_override or 0)
        headers: dict[str, str] = {}
        if status == 400:
            body = json.dumps({"errors": [FROM_INVALID_ERROR]}).encode()
        elif status == 401:
            body = _error_body(AUTH_INVALID)
        elif status == 403:
            body = _error_body("access forbidden")
        else:
            body = _error_body(HTTPStatus(status).phrase.lower())
            if status == 429:
                headers = _rate_limit_headers(faults.reset_in)
        h.send_json(status, body, headers)

    def _draw(self, faults: Faults) -> str:
        """One random draw, read against the cumulative fault probabilities."""
        with self._lock:
            if self._rng_key != (id(faults), faults.seed):
                self._rng = random.Random(faults.seed)
                self._rng_key = (id(faults), faults.seed)
            r = self._rng.random()
        edge = 0.0
        for name in ("rate_limit", "server_error", "drop_after_accept", "timeout_after_accept"):
            edge += getattr(faults, name)
            if r < edge:
                return name
        return "accept"

    def _accept(self, body: dict[str, Any], number: int) -> str:
        """Record every personalization of an accepted request; returns its message id."""
        message_id = _message_id()
        records = [
            {**copy.deepcopy(p), "_message_id": message_id, "_request": number}
            for p in body["personalizations"]
        ]
        with self._lock:
            self.accepted.extend(records)
        return message_id

    def _suppressions_get(self, h: _Handler) -> None:
        """GET /v3/suppression/<kind>?limit=&offset=: one page of a suppression list."""
        with self._lock:
            self.suppression_requests.append(h.path)
        if not h.authorized(self.api_key):
            return
        parts = urlsplit(h.path)
        kind = parts.path[len(SUPPRESSION_PREFIX) :].strip("/")
        if kind not in self.suppressions:
            h.send_json(404, _error_body("resource not found"))
            return
        asked = _page(parts.query, DEFAULT_PAGE_LIMIT)
        if asked is None:
            h.send_json(400, _error_body("limit must be positive, offset not negative", "limit"))
            return
        limit, offset = asked
        emails = self.suppressions[kind]
        page = [
            _suppression_object(kind, email, SUPPRESSION_CREATED + i)
            for i, email in enumerate(emails)
        ][offset : offset + limit]
        h.send_json(200, json.dumps(page).encode())

    def _schedules_call(self, h: _Handler, path: str) -> None:
        """POST /v3/mail/batch, and POST or GET /v3/user/scheduled_sends."""
        raw = h.read_body() if h.command == "POST" else b""
        with self._lock:
            self.schedule_requests.append(f"{h.command} {h.path}")
        if not h.authorized(self.api_key):
            return
        if "mail.send" not in self.scopes:
            h.send_json(403, _error_body("access forbidden"))
            return
        if path == BATCH_PATH:
            h.send_json(201, json.dumps({"batch_id": self.schedules.new_batch()}).encode())
            return
        if h.command == "GET":
            h.send_json(200, json.dumps(self.schedules.listing()).encode())
            return
        try:
            answer = self.schedules.set_status(json.loads(raw or b"null"))
        except (ValueError, ScheduleRefused) as exc:
            message = exc.message if isinstance(exc, ScheduleRefused) else "invalid JSON"
            field = exc.field if isinstance(exc, ScheduleRefused) else None
            h.send_json(400, _error_body(message, field))
            return
        h.send_json(201, json.dumps(answer).encode())

    def undelivered(self) -> list[str]:
        """Accepted addresses a cancel kept from delivery (see ``Schedules.undelivered``)."""
        with self._lock:
            accepted, requests = list(self.accepted), list(self.requests)
        return self.schedules.undelivered(accepted, lambda p: requests[p["_request"] - 1])

    def _account_get(self, h: _Handler, path: str) -> None:
        """GET /v3/scopes (the key's scopes) or /v3/whitelabel/domains (one page of them)."""
        with self._lock:
            self.account_requests.append(h.path)
        if not h.authorized(self.api_key):
            return
        if path == SCOPES_PATH:
            h.send_json(200, json.dumps({"scopes": list(self.scopes)}).encode())
            return
        if "whitelabel.read" not in self.scopes:
            h.send_json(403, _error_body("access forbidden"))
            return
        asked = _page(urlsplit(h.path).query, DEFAULT_PAGE_LIMIT)
        if asked is None:
            h.send_json(400, _error_body("limit must be positive, offset not negative", "limit"))
            return
        limit, offset = asked
        h.send_json(200, json.dumps(self.domains[offset : offset + limit]).encode())


# -- the OpenAPI request schema ------------------------------------------------------------

# Where the published spec disagrees with the live API and with SendGrid's own Python
# library: the top-level `custom_args` is typed "string", but `Mail.get()` sends (and the
# API takes) an object of strings, as in personalizations. Patched in mail_send_schema();
# tests/test_fake_sendgrid.py checks the raw spec still says "string".
SPEC_ERRATA: dict[str, dict[str, Any]] = {
    "custom_args": {"type": "object", "additionalProperties": {"type": "string"}},
}


def _resolve_refs(node: Any, document: dict[str, Any], depth: int = 0) -> Any:
    """Inline every local ``$ref`` (``#/a/b``) of ``node``; siblings of a ``$ref`` are kept."""
    if depth > 50:
        raise ValueError("$ref nesting too deep (a cycle?)")
    if isinstance(node, list):
        return [_resolve_refs(item, document, depth) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {k: _resolve_refs(v, document, depth) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref!r}")
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return {**_resolve_refs(target, document, depth + 1), **resolved}
    return resolved


@functools.cache
def _load_mail_send_schema(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    body = document["components"]["requestBodies"]["PostMailSend"]
    schema: dict[str, Any] = _resolve_refs(body["content"]["application/json"]["schema"], document)
    schema["properties"].update(copy.deepcopy(SPEC_ERRATA))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def mail_send_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a ``POST /v3/mail/send`` body, from SendGrid's OpenAPI file.

    Read from ``../shared/corpus/sendgrid/tsg_mail_v3.json`` with every ``$ref`` inlined and
    ``SPEC_ERRATA`` applied; skips the calling test when the corpus is not there. A fresh copy
    each call, so callers may change it.
    """
    if not SPEC_PATH.is_file():
        pytest.skip(f"SendGrid OpenAPI spec not found at {SPEC_PATH} (shared corpus missing)")
    return copy.deepcopy(_load_mail_send_schema(SPEC_PATH))


def response_schema(spec_file: str, path: str, status: str = "200") -> dict[str, Any]:
    """The JSON Schema of the answer to ``GET path`` with ``status``, from ``spec_file`` in the
    shared corpus's SendGrid folder (``tsg_scopes_v3.json``, ...), ``$ref``s inlined; skips the
    calling test when that file is not there."""
    spec = SPEC_DIR / spec_file
    if not spec.is_file():
        pytest.skip(f"SendGrid OpenAPI spec not found at {spec} (shared corpus missing)")
    document = json.loads(spec.read_text(encoding="utf-8"))
    answer = _resolve_refs(document["paths"][path]["get"]["responses"][status], document)
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema"}
