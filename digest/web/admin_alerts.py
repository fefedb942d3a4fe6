"""Compose a special alert in the console: Markdown with a preview, a test copy, then the send
now or at a time (after a second look at who gets it)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest.alert import MAX_BODY_BYTES
from digest.context import App
from digest.errors import DigestError
from digest.lifecycle.alerts import (
    ALERT_ID,
    AlertDraft,
    draft_alert,
    parse_at,
    send_alert_test,
    store_alert,
)
from digest.lifecycle.states import state_of
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.urls import CONSOLE, edition_path
from digest.web.console import console, start_send
from digest.web.deps import Ctx, PostedDep, StaffDep, text_field
from digest.web.pages import preview_copy

router = APIRouter(prefix=CONSOLE + "/alerts")
ACTIONS = ("preview", "test", "send", "confirm")


def _page(
    ctx: App,
    staff: Staff,
    form: FormData | None,
    *,
    draft: AlertDraft | None = None,
    note: str = "",
    problem: str = "",
    confirm: bool = False,
    at: datetime | None = None,
    status: int = 200,
) -> HTMLResponse:

    def field(name: str) -> str:
        return text_field(form, name) if form else ""

    return console(
        ctx.settings,
        staff,
        "web/admin/alert.html.j2",
        title="New alert",
        lists=[x for x in ctx.settings.lists if x.kind == "alerts"],
        subject=field("subject"),
        body=str(form.get("body") or "") if form else "",
        chosen=field("list"),
        test_to=field("test_to") or staff.email,
        email=preview_copy(draft.email, ctx.settings.delivery.base_url) if draft else None,
        note=note,
        problem=problem,
        confirm=draft.recipients if confirm and draft else None,
        alert=draft.id if draft else "",
        send_at=field("send_at"),
        at=at.astimezone(ctx.settings.organisation.zone) if at else None,
        zone=ctx.settings.organisation.timezone,
        status=status,
    )


@router.get("/new", response_class=HTMLResponse)
def new_alert(ctx: Ctx, staff: StaffDep) -> HTMLResponse:
    return _page(ctx, staff, None)


@router.post("")
async def alert_post(ctx: Ctx, posted: PostedDep) -> Response:
    # Rendering and sending are blocking work: the thread pool, not the event loop.
    return await run_in_threadpool(_handle, ctx, posted.staff, posted.form)


def _handle(ctx: App, staff: Staff, form: FormData) -> Response:
    action = text_field(form, "action")
    body = str(form.get("body") or "")
    if problem := _problem(action, body):
        return _page(ctx, staff, form, problem=problem, status=400)
    # The confirm step carries the id chosen at the send step: a second click on "Yes"
    # finds the alert already stored and sends nothing more.
    given = text_field(form, "alert")
    ident = given if action == "confirm" and ALERT_ID.match(given) else None
    if ident is not None:
        with ctx.engine.connect() as conn:
            if state_of(conn, ident) is not None:
                return RedirectResponse(edition_path(ident), 303)
    try:
        draft = draft_alert(
            ctx, text_field(form, "subject"), body, text_field(form, "list") or None, ident=ident
        )
        if action == "test":
            sent_to = send_alert_test(ctx, draft, text_field(form, "test_to"))
            audit.log(
                ctx.engine,
                who=staff.email,
                action="alert test sent",
                target=sent_to,
                detail=draft.email.subject,
            )
            return _page(ctx, staff, form, draft=draft, note=f"Test sent to {sent_to}.")
        at = _send_at(ctx, form) if action in ("send", "confirm") else None
        if action in ("preview", "send"):
            return _page(ctx, staff, form, draft=draft, confirm=action == "send", at=at)
        store_alert(ctx, draft, who=staff.email, at=at)
        if at is not None:
            audit.log(
                ctx.engine,
                who=staff.email,
                action="alert scheduled",
                target=draft.id,
                detail=f"{draft.email.subject} at {at.isoformat(timespec='minutes')}",
            )
            return RedirectResponse(edition_path(draft.id), 303)
        response = start_send(ctx, staff, draft.id)
    except DigestError as exc:
        return _page(ctx, staff, form, problem=str(exc), status=400)
    audit.log(
        ctx.engine,
        who=staff.email,
        action="alert sent",
        target=draft.id,
        detail=f"{draft.email.subject} (lists: {', '.join(draft.slugs)})",
    )
    return response


def _send_at(ctx: App, form: FormData) -> datetime | None:
    """The form's "Send at" (the organisation's time), or None to send now."""
    given = text_field(form, "send_at")
    if not given:
        return None
    return parse_at(given, ctx.settings, ctx.clock(), name="Send at")


def _problem(action: str, body: str) -> str:
    if action not in ACTIONS:
        return "Choose preview, test or send."
    if len(body.encode()) > MAX_BODY_BYTES:
        return "The message is over 200 KB: shorten it."
    if not body.strip():
        return "The message is empty: write it first."
    return ""
