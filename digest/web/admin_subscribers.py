"""Subscribers in the console: search, one person's page, CSV import (the command line's
report) and export."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from digest.audience.export import STATUSES, export_csv
from digest.audience.importer import ImportReport, import_csv
from digest.audience.members import details_by_id, remove
from digest.context import App
from digest.dispatch.events import events_of
from digest.errors import DigestError
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.store import audience, ledger
from digest.urls import CONSOLE, console_path
from digest.web.console import console, missing
from digest.web.deps import Ctx, Posted, PostedDep, StaffDep, text_field

IMPORT_PATH = console_path("subscribers/import")
UPLOAD_CHUNK = 1 << 20
router = APIRouter(prefix=CONSOLE)


@router.get("/subscribers", response_class=HTMLResponse)
def search(ctx: Ctx, staff: StaffDep, q: str = "") -> HTMLResponse:
    with ctx.engine.connect() as conn:
        found = audience.search_subscribers(conn, q[:200])
        counts = audience.list_counts(conn)
    return console(
        ctx.settings,
        staff,
        "web/admin/subscribers.html.j2",
        title="Subscribers",
        q=q,
        found=found,
        lists=ctx.settings.lists,
        counts=counts,
        statuses=STATUSES,
    )


@router.get("/subscribers/{subscriber_id:int}", response_class=HTMLResponse)
def person(ctx: Ctx, staff: StaffDep, subscriber_id: int, done: str = "") -> HTMLResponse:
    with ctx.engine.connect() as conn:
        who = details_by_id(conn, subscriber_id)
        if who is None:
            return missing(ctx.settings, staff)
        sends = ledger.sends_to(conn, subscriber_id)
        events = events_of(conn, who.email)
    return console(
        ctx.settings,
        staff,
        "web/admin/subscriber.html.j2",
        title=who.email,
        who=who,
        sends=sends,
        events=events,
        done=done[:300],
    )


@router.post("/subscribers/{subscriber_id:int}/remove")
async def remove_person(ctx: Ctx, posted: PostedDep, subscriber_id: int) -> Response:
    list_slug = text_field(posted.form, "list")
    return await run_in_threadpool(_take_off, ctx, posted.staff, subscriber_id, list_slug)


def _take_off(ctx: App, staff: Staff, subscriber_id: int, list_slug: str) -> Response:
    """Off one list, or off everything (then suppressed); audited."""
    with ctx.engine.connect() as conn:
        row = audience.subscriber_by_id(conn, subscriber_id)
    if row is None:
        return missing(ctx.settings, staff)
    try:
        done = remove(
            ctx,
            row.email,
            list_slug=list_slug or None,
            now=ctx.clock(),
            origin=f"console ({staff.email})",
        )
    except DigestError as exc:
        done = f"not done: {exc}"
    else:
        audit.log(
            ctx.engine,
            who=staff.email,
            action="subscriber removed",
            target=row.email_key,
            detail=f"from {list_slug}" if list_slug else "from every list, suppressed",
        )
    return RedirectResponse(
        console_path(f"subscribers/{subscriber_id}?done={quote(done)}"), status_code=303
    )


def _import_page(ctx: App, staff: Staff, status: int = 200, **shown: Any) -> HTMLResponse:
    """The form, with the last import's report when there is one."""
    empty = {"report": None, "problem": "", "file": "", "list_slug": "", "dry_run": True}
    return console(
        ctx.settings,
        staff,
        "web/admin/import.html.j2",
        title="Import subscribers",
        lists=ctx.settings.lists,
        status=status,
        **(empty | shown),
    )


@router.get("/subscribers/import", response_class=HTMLResponse)
def import_form(ctx: Ctx, staff: StaffDep) -> HTMLResponse:
    return _import_page(ctx, staff)


@router.post("/subscribers/import", response_class=HTMLResponse)
async def import_post(ctx: Ctx, posted: PostedDep) -> HTMLResponse:
    form = posted.form
    upload = form.get("file")
    list_slug = text_field(form, "list")
    dry_run = form.get("dry_run") == "on"
    problem, report = "", None
    if not isinstance(upload, UploadFile) or not upload.filename:
        problem = "Choose a CSV file to import."
    else:
        try:
            report = await _import_upload(ctx, posted, upload, list_slug, dry_run)
        except DigestError as exc:
            problem = str(exc)
    return _import_page(
        ctx,
        posted.staff,
        report=report,
        problem=problem,
        file=_shown_name(upload.filename) if isinstance(upload, UploadFile) else "",
        list_slug=list_slug,
        dry_run=dry_run,
        status=400 if problem else 200,
    )


def _shown_name(given: str | None) -> str:
    """An uploaded file's name for the report: its last part, printable, short."""
    last = (given or "").replace("\\", "/").rsplit("/", 1)[-1]
    shown = "".join(c for c in last if c.isprintable()).strip()[:100]
    return shown if shown.strip(".") else "upload.csv"


async def _import_upload(
    ctx: App, posted: Posted, upload: UploadFile, list_slug: str, dry_run: bool
) -> ImportReport:
    """The upload, streamed to a temporary file, imported as the command line would. The
    name it came with is only shown, never used as a path."""
    with tempfile.TemporaryDirectory(prefix="digest-import-") as folder:
        path = Path(folder) / "upload.csv"
        with path.open("wb") as out:
            while chunk := await upload.read(UPLOAD_CHUNK):
                out.write(chunk)
        report = await run_in_threadpool(
            import_csv,
            ctx,
            path,
            list_slug=list_slug,
            default_format=text_field(posted.form, "format") or None,
            pending=posted.form.get("pending") == "on",
            dry_run=dry_run,
            now=ctx.clock(),
            file_name=_shown_name(upload.filename),
        )
    if report.written:
        audit.log(
            ctx.engine,
            who=posted.staff.email,
            action="subscribers imported",
            target=list_slug,
            detail=f"{_shown_name(upload.filename)}: added {report.added}, "
            f"updated {report.updated}, rejected {len(report.rejected)}",
        )
    return report


@router.get("/subscribers.csv")
def export(ctx: Ctx, staff: StaffDep, list: str = "", status: str = "") -> Response:
    out = io.StringIO()
    try:
        count = export_csv(ctx, out, list_slug=list or None, status=status or None)
    except DigestError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain")
    audit.log(
        ctx.engine,
        who=staff.email,
        action="subscribers exported",
        target=list or "all lists",
        detail=f"{count} rows" + (f", status {status}" if status else ""),
    )
    stamp = ctx.clock().strftime("%Y%m%d")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="subscribers-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
