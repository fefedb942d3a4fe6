"""Scheduled sends in the fake SendGrid: ``POST /v3/mail/batch`` hands out batch ids,
``POST /v3/user/scheduled_sends`` cancels or pauses one, ``GET`` lists them, and mail
sends are checked the way the real API checks ``send_at`` and ``batch_id``.

Shapes follow ``tsg_mail_v3.json`` and ``tsg_scheduled_sends_v3.json`` in the corpus:
a batch id answers 201 ``{"batch_id": ...}``; a status 201 ``{"batch_id", "status"}``;
the list 200 ``[{"batch_id", "status"}]``. A ``send_at`` more than 72 hours ahead, or a
``batch_id`` the fake never handed out, is a 400 like SendGrid's.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

AHEAD_LIMIT = 72 * 3600
BATCH_PATH = "/v3/mail/batch"
SCHEDULED_PATH = "/v3/user/scheduled_sends"
STATUSES = ("cancel", "pause")


class ScheduleRefused(Exception):
    """A request SendGrid answers 400 (message, field)."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class Schedules:
    """The fake's batch ids and the cancels and pauses asked of them, in order."""

    batch_ids: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)  # batch id -> cancel | pause
    changes: list[dict[str, Any]] = field(default_factory=list)  # each with its "at" time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_batch(self) -> str:
        batch_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        batch_id = batch_id.replace("-", "A").replace("_", "B")
        with self.lock:
            self.batch_ids.append(batch_id)
        return batch_id

    def set_status(self, body: Any) -> dict[str, str]:
        if not isinstance(body, dict) or not isinstance(body.get("batch_id"), str):
            raise ScheduleRefused("batch_id is required", "batch_id")
        if body.get("status") not in STATUSES:
            raise ScheduleRefused("status must be cancel or pause", "status")
        batch_id = body["batch_id"]
        with self.lock:
            if batch_id not in self.batch_ids:
                raise ScheduleRefused("invalid batch id", "batch_id")
            if batch_id in self.status:
                raise ScheduleRefused("batch id already has a status: use PATCH", "batch_id")
            self.status[batch_id] = body["status"]
            self.changes.append({**body, "at": time.time()})
        return {"batch_id": batch_id, "status": body["status"]}

    def listing(self) -> list[dict[str, str]]:
        with self.lock:
            return [{"batch_id": b, "status": s} for b, s in self.status.items()]

    def check_send(self, body: dict[str, Any]) -> None:
        """Raise ScheduleRefused for a ``send_at`` or ``batch_id`` SendGrid would refuse."""
        now = time.time()
        for i, p in enumerate(body["personalizations"]):
            if "send_at" not in p:
                continue
            send_at = p["send_at"]
            where = f"personalizations.{i}.send_at"
            if not isinstance(send_at, int) or isinstance(send_at, bool):
                raise ScheduleRefused("send_at must be a unix timestamp (an integer)", where)
            if send_at > now + AHEAD_LIMIT:
                raise ScheduleRefused(
                    "The send_at parameter cannot be more than 72 hours in the future.", where
                )
        if "batch_id" in body:
            with self.lock:
                known = body["batch_id"] in self.batch_ids
            if not known:
                raise ScheduleRefused("The batch_id is not valid.", "batch_id")

    def undelivered(self, accepted: list[dict[str, Any]], request_of: Any) -> list[str]:
        """The addresses of accepted personalizations that a cancel kept from delivery:
        under a cancelled batch id, their ``send_at`` after the cancel."""
        with self.lock:
            cancelled = {c["batch_id"]: c["at"] for c in self.changes if c["status"] == "cancel"}
        out = []
        for p in accepted:
            batch_id = request_of(p).get("batch_id")
            at = cancelled.get(batch_id)
            if at is not None and p.get("send_at", 0) > at:
                out.extend(to["email"].lower() for to in p.get("to", []))
        return out
