"""Compose a special alert in the console: Markdown with a preview, a test copy, then the send
(after a second look at who gets it)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest import clock
from digest.alert import ALERT_ID, MAX_BODY_BYTES, alert_id, render_alert, send_test, store_alert
from digest.config import Secrets, Settings
from digest.dispatch.plan import list_slugs
from digest.dispatch.send import choose_transport
from digest.errors import DigestError
from digest.models import RenderedEmail
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.store import audience, editions
from digest.web.auth import CONSOLE, require_staff, staff_form, text_field
from digest.web.console import console, start_send
from digest.web.pages import preview_copy

ACTIONS = ("preview", "test", "send", "confirm")


def alert_routes(app: FastAPI, settings: Settings, engine: Engine, secrets: Secrets) -> None:
    offered = [x for x in settings.lists if x.kind == "alerts"]

    def page(
        staff: Staff,
        form: FormData | None,
        *,
        email: RenderedEmail | None = None,
        note: str = "",
        problem: str = "",
        confirm: int | None = None,
        alert: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        return console(
            settings,
            staff,
            "web/admin/alert.html.j2",
            title="New alert",
            lists=offered,
            subject=text_field(form, "subject") if form else "",
            body=str(form.get("body") or "") if form else "",
            chosen=text_field(form, "list") if form else "",
            test_to=(text_field(form, "test_to") if form else "") or staff.email,
            email=preview_copy(email, settings.delivery.base_url) if email else None,
            note=note,
            problem=problem,
            confirm=confirm,
            alert=alert,
            status=status,
        )

    @app.get(f"{CONSOLE}/alerts/new", response_class=HTMLResponse)
    def new_alert(request: Request) -> HTMLResponse:
        return page(require_staff(request, engine), None)

    @app.post(f"{CONSOLE}/alerts")
    async def alert_post(request: Request) -> Response:
        staff, form = await staff_form(request, engine)
        # Rendering and sending are blocking work: the thread pool, not the event loop.
        return await run_in_threadpool(handle, staff, form)

    def handle(staff: Staff, form: FormData) -> Response:
        action = text_field(form, "action")
        body = str(form.get("body") or "")
        list_slug = text_field(form, "list") or None
        now = clock.now()
        if problem := _problem(action, body):
            return page(staff, form, problem=problem, status=400)
        # The confirm step carries the id chosen at the send step: a second click on "Yes"
        # finds the alert already stored and sends nothing more.
        given = text_field(form, "alert")
        ident = given if action == "confirm" and ALERT_ID.match(given) else alert_id(now)
        with engine.connect() as conn:
            if action == "confirm" and editions.state_of(conn, ident) is not None:
                return RedirectResponse(f"{CONSOLE}/editions/{ident}", 303)
        try:
            slugs = list_slugs(settings, list_slug, "alerts")
            email = render_alert(settings, text_field(form, "subject"), body, alert=ident, now=now)
            if action == "test":
                transport = choose_transport(settings, secrets, now)
                given = send_test(
                    settings, secrets, email, transport, text_field(form, "test_to"), list_slug, now
                )
                audit.log(
                    engine,
                    who=staff.email,
                    action="alert test sent",
                    target=given,
                    detail=email.subject,
                )
                return page(staff, form, email=email, note=f"Test sent to {given}.")
        except DigestError as exc:
            return page(staff, form, problem=str(exc), status=400)
        if action == "preview":
            return page(staff, form, email=email)
        if action == "send":
            with engine.connect() as conn:
                count = sum(1 for _ in audience.recipients_for(conn, slugs))
            return page(staff, form, email=email, confirm=count, alert=ident)
        store_alert(engine, settings, ident, email, now)
        audit.log(
            engine,
            who=staff.email,
            action="alert sent",
            target=ident,
            detail=f"{email.subject} (lists: {', '.join(slugs)})",
        )
        return start_send(settings, engine, secrets, staff, ident, now, list_slug)


def _problem(action: str, body: str) -> str:
    if action not in ACTIONS:
        return "Choose preview, test or send."
    if len(body.encode()) > MAX_BODY_BYTES:
        return "The message is over 200 KB: shorten it."
    if not body.strip():
        return "The message is empty: write it first."
    return ""
