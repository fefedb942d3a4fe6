"""The SendGrid transport: a batch as one v3 mail/send request, the answer as an Outcome.

Payloads are plain dicts (three times faster than the helper classes, and those
prepend personalizations), encoded once to the bytes posted. A batch is posted on its
thread's kept-alive connection (:mod:`digest.dispatch.connection`), with the official
client's own headers; the official client posts everything else (schedules,
suppressions), its timeout always set: by default it waits forever.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
import urllib.error
from email.utils import parseaddr
from typing import Any

import orjson
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from digest.config import Settings
from digest.dispatch.batch import LedgerPeople, Outcome, OutgoingBatch
from digest.dispatch.connection import KeptAlive, NoAnswer, NotSent
from digest.dispatch.personal import list_unsubscribe
from digest.errors import DeliveryError
from digest.render import NAME, PREFERENCES, UNSUBSCRIBE

DEFAULT_HOST = "https://api.sendgrid.com"
MAIL_SEND = "/v3/mail/send"
# Not the client's own "application/json": with any other value it posts the text given
# as it is instead of passing it through json.dumps.
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
MAX_ATTACHMENTS = 20_000_000  # bytes after base64; a whole request must stay under 30 MB
# What a name in a substitution loses (a regular expression: a third of str.translate's
# time on a batch's thousand names).
_NAME_UNSAFE = re.compile("[<>&\"']")
ONE_CLICK = "List-Unsubscribe=One-Click"


def build_payload(settings: Settings, batch: OutgoingBatch) -> dict[str, Any]:
    """The request body for one batch: content once, one personalization per recipient."""
    email = batch.email
    content = [{"type": "text/plain", "value": email.text}]
    if batch.with_html:
        content.append({"type": "text/html", "value": email.html})
    uses_name = NAME in email.text or NAME in email.html or NAME in email.subject
    send_at = None if batch.deliver_at is None else int(batch.deliver_at.timestamp())
    people = batch.addressees
    if isinstance(people, LedgerPeople):
        personalizations = _from_rows(people, uses_name, send_at)
    else:
        personalizations = [_personalization(a, uses_name) for a in people]
        if send_at is not None:
            for one in personalizations:
                one["send_at"] = send_at
    body: dict[str, Any] = {
        "personalizations": personalizations,
        "from": _address(
            settings.delivery.from_email, settings.delivery.from_name or settings.organisation.name
        ),
        "subject": email.subject,
        "content": content,
        "custom_args": {"digest_edition": batch.edition_id, "digest_batch": str(batch.seq)},
        "categories": ["digest", batch.edition_id],
        "tracking_settings": _tracking(settings.delivery.tracking),
    }
    if settings.organisation.reply_to:
        body["reply_to"] = _address(settings.organisation.reply_to, "")
    if settings.delivery.asm_group_id is not None:
        body["asm"] = {"group_id": settings.delivery.asm_group_id}
    if settings.delivery.sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    if batch.attachments:
        body["attachments"] = _attachments(batch)
    if batch.schedule is not None:
        body["batch_id"] = batch.schedule
    return body


def encode_payload(body: dict[str, Any]) -> bytes:
    """The request body as the UTF-8 JSON bytes posted: orjson's (a tenth of json.dumps's
    time on a batch of 1,000; kept as bytes, since decoding and encoding again the 750 KB
    of a batch cost eight times the encoding), or json's for what orjson refuses (a lone
    surrogate in some feed's text)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body).encode()


def _attachments(batch: OutgoingBatch) -> list[dict[str, str]]:
    total = sum(len(f.data) for f in batch.attachments)
    if total * 4 // 3 > MAX_ATTACHMENTS:
        raise DeliveryError(
            f"the print edition's files for {batch.variant} are {total / 1e6:.1f} MB, over "
            f"SendGrid's limit once encoded: lower the profile's page_cap"
        )
    return [
        {
            "content": base64.b64encode(f.data).decode("ascii"),
            "type": f.content_type.partition(";")[0],
            "filename": f.filename,
            "disposition": "attachment",
        }
        for f in batch.attachments
    ]


def _from_rows(people: LedgerPeople, uses_name: bool, send_at: int | None) -> list[dict[str, Any]]:
    """What :func:`_personalization` makes of each addressee (the same keys in the same
    order), from the ledger's rows and their tokens straight, the links made in the same
    loop as :meth:`LinkMaker.each` makes them (no tuple of links each): a batch's
    recipients are most of a send's work."""
    unsubscribe_start, preferences_start, mailto = people.maker.starts()
    rows, tokens = people.rows, people.tokens()
    safe_name = _NAME_UNSAFE.sub
    out: list[dict[str, Any]] = []
    append = out.append
    for (_, email, name, _), (unsub, prefs) in zip(rows, tokens, strict=True):
        url = unsubscribe_start + unsub
        substitutions = {UNSUBSCRIBE: url, PREFERENCES: preferences_start + prefs}
        if uses_name:
            substitutions[NAME] = safe_name("", name)
        one: dict[str, Any] = {
            "to": [{"email": email, "name": name} if name else {"email": email}],
            "substitutions": substitutions,
            "headers": {
                "List-Unsubscribe": list_unsubscribe(url, mailto, unsub),
                "List-Unsubscribe-Post": ONE_CLICK,
            },
        }
        if send_at is not None:
            one["send_at"] = send_at
        append(one)
    return out


def _personalization(addressee: Any, uses_name: bool) -> dict[str, Any]:
    person = addressee.recipient
    to = {"email": person.email}
    if person.name:
        to["name"] = person.name
    substitutions = {
        UNSUBSCRIBE: addressee.links.unsubscribe_url,
        PREFERENCES: addressee.links.preferences_url,
    }
    if uses_name:
        # SendGrid puts the same value in the text and the HTML part, unescaped.
        substitutions[NAME] = _NAME_UNSAFE.sub("", person.name)
    return {
        "to": [to],
        "substitutions": substitutions,
        "headers": {
            "List-Unsubscribe": addressee.links.list_unsubscribe,
            "List-Unsubscribe-Post": ONE_CLICK,
        },
    }


def _address(value: str, name: str) -> dict[str, str]:
    display, address = parseaddr(value)
    out = {"email": address or value}
    if name or display:
        out["name"] = name or display
    return out


def _tracking(enabled: bool) -> dict[str, Any]:
    return {
        "click_tracking": {"enable": enabled, "enable_text": enabled},
        "open_tracking": {"enable": enabled},
        "subscription_tracking": {"enable": False},
    }


class SendGridTransport:
    """Posts batches on a kept-alive connection per thread; the official client (one per
    thread) for the rest."""

    name = "sendgrid"

    def __init__(self, settings: Settings, api_key: str, host: str | None) -> None:
        self.settings = settings
        self._api_key = api_key
        self.host = (host or DEFAULT_HOST).rstrip("/")
        self._local = threading.local()
        # The official client's own headers (its key, its User-Agent), for mail/send too.
        self._headers = {
            **SendGridAPIClient(api_key=api_key, host=self.host).client.request_headers
        }
        self._headers.update(JSON_HEADERS)

    def client(self) -> SendGridAPIClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = SendGridAPIClient(api_key=self._api_key, host=self.host)
            client.client.timeout = self.settings.delivery.timeout_seconds
            self._local.client = client
        return client

    def connection(self) -> KeptAlive:
        """This thread's connection to SendGrid (opened at its first request)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = KeptAlive(self.host, self.settings.delivery.timeout_seconds)
        return conn

    def send(self, batch: OutgoingBatch) -> Outcome:
        try:
            body = build_payload(self.settings, batch)
        except DeliveryError as exc:
            return Outcome("failed", reason=str(exc))
        try:
            answer = self.connection().post(MAIL_SEND, encode_payload(body), self._headers)
        except NotSent as exc:
            # Connecting or writing the request failed: SendGrid never had it whole.
            return Outcome("retry", reason=f"could not reach SendGrid ({exc})")
        except NoAnswer as exc:
            # Raised while waiting for the answer: the request went out and may be accepted.
            return Outcome("uncertain", reason=f"no answer after sending ({exc})")
        if not 200 <= answer.status < 300:
            return classify_answer(answer.status, answer.body, answer.headers, answer.reason)
        return Outcome("accepted", message_id=answer.headers.get("X-Message-Id") or "")

    def new_schedule(self) -> str:
        """``POST /v3/mail/batch``: the id an edition's scheduled requests go under."""
        answer = self._account_call("create the scheduled send's batch", "mail", "batch")
        schedule = answer.get("batch_id") if isinstance(answer, dict) else None
        if not isinstance(schedule, str) or not schedule:
            raise DeliveryError("SendGrid answered POST /v3/mail/batch without a batch_id")
        return schedule

    def cancel_schedule(self, schedule: str) -> None:
        """``POST /v3/user/scheduled_sends`` with status cancel: SendGrid discards every
        message of the batch whose ``send_at`` has not come."""
        body = {"batch_id": schedule, "status": "cancel"}
        self._account_call("cancel the scheduled send", "user", "scheduled_sends", body=body)

    def _account_call(self, what: str, *path: str, body: dict[str, Any] | None = None) -> Any:
        """One POST to a SendGrid endpoint other than mail/send; DeliveryError with
        SendGrid's own words if it fails."""
        endpoint: Any = self.client().client
        for part in path:
            endpoint = getattr(endpoint, part)
        try:
            if body is None:
                response = endpoint.post()
            else:
                response = endpoint.post(
                    request_body=encode_payload(body).decode(), request_headers=JSON_HEADERS
                )
        except HTTPError as exc:
            status = getattr(exc, "status_code", "?")
            raise DeliveryError(
                f"SendGrid refused to {what} ({status}: {_error_text(exc)})"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"could not reach SendGrid to {what} ({exc})") from None
        raw = response.body or b"{}"
        try:
            return json.loads(raw)
        except ValueError:
            return {}


def classify_answer(status: int, body: Any, headers: Any, reason: str = "") -> Outcome:
    """An answer other than 2xx as an Outcome, keeping SendGrid's own words (else the
    answer's reason phrase)."""
    text = _words(body, reason)
    if status == 429:
        return Outcome("retry", reason=f"429 rate limited: {text}", wait=_wait_from(headers))
    if status in (401, 403):
        return Outcome(
            "stop",
            reason=(
                f"SendGrid refused the API key ({status}: {text}): check SENDGRID_API_KEY "
                "(it needs the Mail Send permission)"
            ),
        )
    if status == 413:
        return Outcome("split", reason=f"413 payload too large: {text}")
    if status >= 500:
        return Outcome("retry", reason=f"{status} from SendGrid: {text}")
    return Outcome("failed", reason=f"{status} from SendGrid: {text}")


def _error_text(exc: HTTPError) -> str:
    return _words(getattr(exc, "body", b""), str(getattr(exc, "reason", "")))


def _words(raw: Any, reason: str) -> str:
    """SendGrid's error messages from an answer's body (else its text, else the reason)."""
    raw = raw or b""
    try:
        errors = json.loads(raw).get("errors") or []
        parts = [
            e.get("message", "") + (f" (field {e['field']})" if e.get("field") else "")
            for e in errors
            if isinstance(e, dict)
        ]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.strip()[:300] or reason or "no details"


def _wait_from(headers: Any) -> float | None:
    if headers is None:
        return None
    reset = headers.get("X-RateLimit-Reset")
    if reset and str(reset).isdigit():
        return max(0.0, int(reset) - time.time())
    after = headers.get("Retry-After")
    if after and str(after).isdigit():
        return float(after)
    return None
