"""SendGrid's event webhook: verify, then parse, then act."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from digest.dispatch.events import parse_events, record_events, verify_signature
from digest.store.db import one_writer
from digest.web.deps import Ctx

log = logging.getLogger(__name__)
router = APIRouter()


@router.post("/webhooks/sendgrid")
async def sendgrid_events(ctx: Ctx, request: Request) -> Response:
    """A bad signature stores nothing (403); our own failure is a 5xx so SendGrid sends
    the events again."""
    body = await request.body()
    key = ctx.secrets.webhook_public_key
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    stamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    if not key or not verify_signature(key, body, signature, stamp, now=ctx.clock()):
        return Response("bad signature", status_code=403)
    try:
        events = parse_events(body)
    except ValueError:
        return Response("not a list of events", status_code=400)

    def store() -> Any:
        with one_writer(ctx.engine):
            return record_events(ctx.engine, events, now=ctx.clock())

    try:
        counts = await run_in_threadpool(store)
    except Exception:  # the database, our side: SendGrid retries on a 5xx
        log.exception("could not store %d SendGrid events", len(events))
        return Response("try again", status_code=503)
    log.info("sendgrid events: %s", dict(counts))
    return Response(status_code=200)
