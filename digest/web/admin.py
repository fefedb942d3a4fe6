"""The staff console under /admin: editions (preview, approve, reject, live progress, numbers),
the activity log, and the alert and subscriber pages (their own modules)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from digest import clock
from digest.config import Secrets, Settings
from digest.errors import DigestError
from digest.staff import audit
from digest.staff.numbers import edition_numbers
from digest.staff.sessions import Staff
from digest.store import editions, ledger
from digest.web.admin_alerts import alert_routes
from digest.web.admin_subscribers import IMPORT_PATH, subscriber_routes
from digest.web.auth import CONSOLE, auth_routes, require_staff, staff_form, text_field
from digest.web.console import console, missing, start_send
from digest.web.pages import FRAMED_HEADERS, without_personal_links
from digest.weekly import AWAITING, mark_approved, reject

__all__ = ["IMPORT_PATH", "admin_routes"]
LIVE = {"pending", "in_flight"}


def admin_routes(app: FastAPI, settings: Settings, engine: Engine, secrets: Secrets) -> None:
    auth_routes(app, settings, engine)
    _edition_routes(app, settings, engine, secrets)
    alert_routes(app, settings, engine, secrets)
    subscriber_routes(app, settings, engine)

    @app.get(CONSOLE, response_class=HTMLResponse)
    def dashboard(request: Request) -> HTMLResponse:
        staff = require_staff(request, engine)
        with engine.connect() as conn:
            rows = editions.listing(conn)
        return console(settings, staff, "web/admin/dashboard.html.j2", title="Editions", rows=rows)

    @app.get(f"{CONSOLE}/activity", response_class=HTMLResponse)
    def activity(request: Request) -> HTMLResponse:
        staff = require_staff(request, engine)
        with engine.connect() as conn:
            entries = audit.recent(conn, limit=500)
        return console(
            settings, staff, "web/admin/activity.html.j2", title="Activity", entries=entries
        )


def _edition_routes(app: FastAPI, settings: Settings, engine: Engine, secrets: Secrets) -> None:
    base = f"{CONSOLE}/editions/{{edition_id}}"

    @app.get(base, response_class=HTMLResponse)
    def edition_page(request: Request, edition_id: str) -> HTMLResponse:
        staff = require_staff(request, engine)
        with engine.connect() as conn:
            stored = editions.get_edition(conn, edition_id)
            if stored is None:
                return missing(settings, staff)
            state = editions.state_of(conn, edition_id)
            files = editions.get_files(conn, edition_id)
            progress = ledger.summary(conn, edition_id)
            numbers = edition_numbers(conn, edition_id, tracking=settings.delivery.tracking)
            changes = editions.history(conn, edition_id)
        live = state == "sending" or any(progress["batches"][s] for s in LIVE)
        return console(
            settings,
            staff,
            "web/admin/edition.html.j2",
            title=f"{edition_id}: {stored.subject}",
            edition=stored,
            text=without_personal_links(stored.email.text, settings.delivery.base_url),
            state=state,
            pdfs=[f for f in files if f.content_type == "application/pdf"],
            parts=[
                (
                    f.filename,
                    without_personal_links(
                        f.data.decode("utf-8", "replace"), settings.delivery.base_url
                    ),
                )
                for f in files
                if f.content_type.startswith("text/")
            ],
            progress=progress,
            numbers=numbers,
            changes=changes,
            awaiting=state == AWAITING,
            refresh=5 if live else None,
        )

    @app.get(f"{base}/email.html")
    def email_preview(request: Request, edition_id: str) -> Response:
        require_staff(request, engine)
        with engine.connect() as conn:
            stored = editions.get_edition(conn, edition_id)
        if stored is None:
            return Response("no such edition", status_code=404)
        html = without_personal_links(stored.email.html, settings.delivery.base_url)
        return HTMLResponse(html, headers={**FRAMED_HEADERS, "Cache-Control": "no-store"})

    @app.get(f"{base}/files/{{name}}")
    def edition_file(request: Request, edition_id: str, name: str) -> Response:
        require_staff(request, engine)
        with engine.connect() as conn:
            found = [f for f in editions.get_files(conn, edition_id) if f.filename == name]
        if not found:
            return Response("no such file", status_code=404)
        return Response(
            found[0].data,
            media_type=found[0].content_type,
            headers={"Content-Disposition": "inline", "Cache-Control": "no-store"},
        )

    @app.get(f"{base}/status.json")
    def edition_status(request: Request, edition_id: str) -> Response:
        require_staff(request, engine)
        with engine.connect() as conn:
            return JSONResponse(ledger.summary(conn, edition_id))

    _decision_routes(app, settings, engine, secrets)


def _decision_routes(app: FastAPI, settings: Settings, engine: Engine, secrets: Secrets) -> None:
    """Approve, send a built edition (the send runs in the background) and reject."""
    base = f"{CONSOLE}/editions/{{edition_id}}"

    @app.post(f"{base}/approve")
    async def approve_edition(request: Request, edition_id: str) -> Response:
        staff, _ = await staff_form(request, engine)
        return await run_in_threadpool(approve_and_send, staff, edition_id)

    def approve_and_send(staff: Staff, edition_id: str) -> Response:
        now = clock.now()
        try:
            mark_approved(engine, edition_id, who=staff.email, now=now)
        except DigestError as exc:
            return _refused(settings, staff, edition_id, str(exc))
        audit.log(engine, who=staff.email, action="approved", target=edition_id)
        return start_send(settings, engine, secrets, staff, edition_id, now)

    @app.post(f"{base}/send")
    async def send_edition(request: Request, edition_id: str) -> Response:
        staff, _ = await staff_form(request, engine)
        return await run_in_threadpool(send_built, staff, edition_id)

    def send_built(staff: Staff, edition_id: str) -> Response:
        """A built edition nobody asked approval for (a build by hand, a stored alert)."""
        with engine.connect() as conn:
            state = editions.state_of(conn, edition_id)
        if state != "built":
            why = f"{edition_id} is {(state or 'unknown').replace('_', ' ')}: only a built one"
            return _refused(settings, staff, edition_id, why + " can be sent from here")
        audit.log(engine, who=staff.email, action="sent", target=edition_id)
        return start_send(settings, engine, secrets, staff, edition_id, clock.now())

    @app.post(f"{base}/reject")
    async def reject_edition(request: Request, edition_id: str) -> Response:
        staff, form = await staff_form(request, engine)
        return await run_in_threadpool(refuse, staff, edition_id, text_field(form, "note"))

    def refuse(staff: Staff, edition_id: str, note: str) -> Response:
        now = clock.now()
        try:
            reject(engine, edition_id, who=staff.email, now=now, note=note)
        except DigestError as exc:
            return _refused(settings, staff, edition_id, str(exc))
        audit.log(engine, who=staff.email, action="rejected", target=edition_id, detail=note)
        return RedirectResponse(f"{CONSOLE}/editions/{edition_id}", 303)


def _refused(settings: Settings, staff: Staff, edition_id: str, why: str) -> HTMLResponse:
    return console(
        settings,
        staff,
        "web/admin/refused.html.j2",
        title="Not done",
        why=why,
        back=f"{CONSOLE}/editions/{edition_id}",
        status=409,
    )
