"""Subscribers in the console: filter and page through them, add one person, CSV import
(the command line's report) and export of the filtered view. One person's page is
``admin_person``."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from digest.audience.confirmations import send_confirmation
from digest.audience.export import STATUSES, export_csv, subscriber_filter
from digest.audience.importer import FORMAT_CHOICES, ImportReport, import_csv
from digest.audience.members import add
from digest.audience.signup import request_subscription
from digest.context import App
from digest.errors import DigestError
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.store import audience
from digest.store.audience import Filter
from digest.urls import CONSOLE, console_path
from digest.web.console import console
from digest.web.deps import Ctx, Posted, PostedDep, StaffDep, text_field

IMPORT_PATH = console_path("subscribers/import")
UPLOAD_CHUNK = 1 << 20
router = APIRouter(prefix=CONSOLE)


PAGE = 50


@router.get("/subscribers", response_class=HTMLResponse)
def search(
    ctx: Ctx,
    staff: StaffDep,
    q: str = "",
    list: str = "",
    status: str = "",
    before: int | None = None,
) -> HTMLResponse:
    """Everyone, or those a filter picks, 50 at a time, newest first (keyset pages)."""
    try:
        wanted = subscriber_filter(ctx, text=q, list_slug=list or None, status=status or None)
    except DigestError as exc:
        return _people_page(ctx, staff, Filter(q[:200]), [], None, problem=str(exc))
    with ctx.engine.connect() as conn:
        found = audience.find_subscribers(conn, wanted, before_id=before, limit=PAGE + 1)
    more = found[PAGE - 1].id if len(found) > PAGE else None
    return _people_page(ctx, staff, wanted, found[:PAGE], more, first=before is None)


def _people_page(
    ctx: App,
    staff: Staff,
    wanted: Filter,
    found: list[Any],
    more: int | None,
    *,
    first: bool = True,
    problem: str = "",
    note: str = "",
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with ctx.engine.connect() as conn:
        counts = audience.list_counts(conn)
    query = {"q": wanted.text, "list": wanted.list_slug or "", "status": wanted.status or ""}
    shown = {k: v for k, v in query.items() if v}
    return console(
        ctx.settings,
        staff,
        "web/admin/subscribers.html.j2",
        title="Subscribers",
        wanted=wanted,
        found=found,
        next_page=f"?{urlencode({**shown, 'before': more})}" if more else "",
        first_page="" if first else f"?{urlencode(shown)}",
        export=f"/admin/subscribers.csv?{urlencode(shown)}",
        lists=ctx.settings.lists,
        counts=counts,
        statuses=STATUSES,
        formats=FORMAT_CHOICES,
        profiles=ctx.settings.print.profiles,
        org_timezone=ctx.settings.organisation.timezone,
        problem=problem,
        note=note,
        form=form or {},
        status=status,
    )


@router.post("/subscribers/add", response_class=HTMLResponse)
async def add_person(ctx: Ctx, posted: PostedDep) -> Response:
    """One person onto one list: active at once (staff vouch), or sent a confirmation."""
    return await run_in_threadpool(_add, ctx, posted)


def _add(ctx: App, posted: Posted) -> Response:
    form, who = posted.form, posted.staff.email
    fields = {name: text_field(form, name) for name in ("email", "name", "list", "format")}
    fields["profile"] = text_field(form, "profile")
    fields["timezone"] = text_field(form, "timezone")
    confirm_first = form.get("confirm_first") == "on"
    try:
        if confirm_first:
            asked = request_subscription(
                ctx,
                email=fields["email"],
                name=fields["name"],
                lists=[fields["list"]],
                fmt=fields["format"] or "html",
                profile=fields["profile"] or None,
                now=ctx.clock(),
                invited_by=who,
                timezone=fields["timezone"],
            )
            said = f"asked {asked.email} to confirm {fields['list']}"
        else:
            said = add(
                ctx,
                fields["email"],
                list_slug=fields["list"],
                name=fields["name"],
                fmt=fields["format"] or None,
                profile=fields["profile"] or None,
                pending=False,
                resubscribe=False,
                now=ctx.clock(),
                timezone=fields["timezone"],
            )
    except DigestError as exc:
        return _people_page(
            ctx, posted.staff, Filter(), [], None, problem=str(exc), form=fields, status=400
        )
    audit.log(ctx.engine, who=who, action="subscriber added", target=fields["email"], detail=said)
    answer = _people_page(ctx, posted.staff, Filter(), [], None, note=said[:1].upper() + said[1:])
    if confirm_first:
        answer.background = BackgroundTask(send_confirmation, ctx, asked.request_id)
    return answer


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
def export(ctx: Ctx, staff: StaffDep, q: str = "", list: str = "", status: str = "") -> Response:
    out = io.StringIO()
    try:
        count = export_csv(ctx, out, list_slug=list or None, status=status or None, text=q)
    except DigestError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain")
    audit.log(
        ctx.engine,
        who=staff.email,
        action="subscribers exported",
        target=list or "all lists",
        detail=f"{count} rows"
        + (f", status {status}" if status else "")
        + (f", matching {q[:200]!r}" if q else ""),
    )
    stamp = ctx.clock().strftime("%Y%m%d")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="subscribers-{stamp}.csv"'},
    )
