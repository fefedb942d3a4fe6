"""Subscribers in the console: search, one person's page, CSV import (the command line's
report) and export."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from digest import clock
from digest.audience.export import STATUSES, export_csv
from digest.audience.importer import import_csv
from digest.audience.members import details_by_id, remove
from digest.config import Settings
from digest.dispatch.events import events_of
from digest.errors import DigestError
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.store import audience, ledger
from digest.web.auth import CONSOLE, require_staff, staff_form, text_field
from digest.web.console import console, missing

IMPORT_PATH = f"{CONSOLE}/subscribers/import"
UPLOAD_CHUNK = 1 << 20


def subscriber_routes(app: FastAPI, settings: Settings, engine: Engine) -> None:
    _people_routes(app, settings, engine)
    _file_routes(app, settings, engine)


def _people_routes(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """Search, one person's page, and taking someone off a list or off everything."""

    @app.get(f"{CONSOLE}/subscribers", response_class=HTMLResponse)
    def search(request: Request, q: str = "") -> HTMLResponse:
        staff = require_staff(request, engine)
        with engine.connect() as conn:
            found = audience.search_subscribers(conn, q[:200])
            counts = audience.list_counts(conn)
        return console(
            settings,
            staff,
            "web/admin/subscribers.html.j2",
            title="Subscribers",
            q=q,
            found=found,
            lists=settings.lists,
            counts=counts,
            statuses=STATUSES,
        )

    @app.get(f"{CONSOLE}/subscribers/{{subscriber_id:int}}", response_class=HTMLResponse)
    def person(request: Request, subscriber_id: int, done: str = "") -> HTMLResponse:
        staff = require_staff(request, engine)
        with engine.connect() as conn:
            who = details_by_id(conn, subscriber_id)
            if who is None:
                return missing(settings, staff)
            sends = ledger.sends_to(conn, subscriber_id)
            events = events_of(conn, who.email)
        return console(
            settings,
            staff,
            "web/admin/subscriber.html.j2",
            title=who.email,
            who=who,
            sends=sends,
            events=events,
            done=done[:300],
        )

    @app.post(f"{CONSOLE}/subscribers/{{subscriber_id:int}}/remove")
    async def remove_person(request: Request, subscriber_id: int) -> Response:
        staff, form = await staff_form(request, engine)
        return await run_in_threadpool(take_off, staff, subscriber_id, text_field(form, "list"))

    def take_off(staff: Staff, subscriber_id: int, list_slug: str) -> Response:
        with engine.connect() as conn:
            row = audience.subscriber_by_id(conn, subscriber_id)
        if row is None:
            return missing(settings, staff)
        try:
            done = remove(
                settings,
                engine,
                row.email,
                list_slug=list_slug or None,
                now=clock.now(),
                origin=f"console ({staff.email})",
            )
        except DigestError as exc:
            done = f"not done: {exc}"
        else:
            audit.log(
                engine,
                who=staff.email,
                action="subscriber removed",
                target=row.email_key,
                detail=f"from {list_slug}" if list_slug else "from every list, suppressed",
            )
        return RedirectResponse(
            f"{CONSOLE}/subscribers/{subscriber_id}?done={quote(done)}", status_code=303
        )


def _file_routes(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """CSV import (the command line's report) and export."""

    def import_page(staff: Staff, status: int = 200, **shown: Any) -> HTMLResponse:
        """The form, with the last import's report when there is one."""
        empty = {"report": None, "problem": "", "file": "", "list_slug": "", "dry_run": True}
        return console(
            settings,
            staff,
            "web/admin/import.html.j2",
            title="Import subscribers",
            lists=settings.lists,
            status=status,
            **(empty | shown),
        )

    @app.get(IMPORT_PATH, response_class=HTMLResponse)
    def import_form(request: Request) -> HTMLResponse:
        return import_page(require_staff(request, engine))

    @app.post(IMPORT_PATH, response_class=HTMLResponse)
    async def import_post(request: Request) -> HTMLResponse:
        staff, form = await staff_form(request, engine)
        upload = form.get("file")
        list_slug = text_field(form, "list")
        dry_run = form.get("dry_run") == "on"
        problem, report = "", None
        if not isinstance(upload, UploadFile) or not upload.filename:
            problem = "Choose a CSV file to import."
        else:
            name = Path(upload.filename).name
            with tempfile.TemporaryDirectory(prefix="digest-import-") as folder:
                path = Path(folder) / (name or "upload.csv")
                with path.open("wb") as out:
                    while chunk := await upload.read(UPLOAD_CHUNK):
                        out.write(chunk)
                try:
                    report = await run_in_threadpool(
                        import_csv,
                        settings,
                        engine,
                        path,
                        list_slug=list_slug,
                        default_format=text_field(form, "format") or None,
                        pending=form.get("pending") == "on",
                        dry_run=dry_run,
                        now=clock.now(),
                    )
                except DigestError as exc:
                    problem = str(exc)
            if report is not None and report.written:
                audit.log(
                    engine,
                    who=staff.email,
                    action="subscribers imported",
                    target=list_slug,
                    detail=f"{name}: added {report.added}, updated {report.updated}, "
                    f"rejected {len(report.rejected)}",
                )
        return import_page(
            staff,
            report=report,
            problem=problem,
            file=upload.filename if isinstance(upload, UploadFile) else "",
            list_slug=list_slug,
            dry_run=dry_run,
            status=400 if problem else 200,
        )

    @app.get(f"{CONSOLE}/subscribers.csv")
    def export(request: Request, list: str = "", status: str = "") -> Response:
        staff = require_staff(request, engine)
        out = io.StringIO()
        try:
            count = export_csv(settings, engine, out, list_slug=list or None, status=status or None)
        except DigestError as exc:
            return Response(f"{exc}\n", status_code=400, media_type="text/plain")
        audit.log(
            engine,
            who=staff.email,
            action="subscribers exported",
            target=list or "all lists",
            detail=f"{count} rows" + (f", status {status}" if status else ""),
        )
        stamp = clock.now().strftime("%Y%m%d")
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="subscribers-{stamp}.csv"',
                "Cache-Control": "no-store",
            },
        )
