"""The editorial desk on an edition's page: collect now, rebuild, and the choices about
its items, subject and preheader. Each is a form; each answer is the edition's page again,
rebuilt, with what was done."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.collect import SourceOutcome
from digest.context import App
from digest.errors import DigestError
from digest.lifecycle.editing import choose, collect_now, rebuild, set_subject
from digest.staff import audit
from digest.urls import CONSOLE, edition_path
from digest.web.admin import show_edition
from digest.web.console import console
from digest.web.deps import Ctx, Posted, PostedDep, text_field

router = APIRouter(prefix=CONSOLE)
EDITION = "/editions/{edition_id}"
ACTIONS = ("leave_out", "put_back", "up", "down", "pin", "unpin", "edit")


@router.post(EDITION + "/items/{item_key}/{action}")
async def item_choice(
    ctx: Ctx, posted: PostedDep, edition_id: str, item_key: str, action: str
) -> Response:
    def work() -> Response:
        if action not in ACTIONS:
            return show_edition(ctx, posted.staff, edition_id, problem="Unknown change.")
        try:
            choose(
                ctx,
                edition_id,
                item_key,
                action,
                who=posted.staff.email,
                title=text_field(posted.form, "title"),
                summary=text_field(posted.form, "summary"),
            )
        except DigestError as exc:
            return show_edition(ctx, posted.staff, edition_id, problem=str(exc))
        return RedirectResponse(f"{edition_path(edition_id)}#item-{item_key}", 303)

    return await run_in_threadpool(work)


@router.post(EDITION + "/subject")
async def subject(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    def work() -> HTMLResponse:
        try:
            set_subject(
                ctx,
                edition_id,
                subject=text_field(posted.form, "subject"),
                preheader=text_field(posted.form, "preheader"),
                who=posted.staff.email,
            )
        except DigestError as exc:
            return show_edition(ctx, posted.staff, edition_id, problem=str(exc))
        return show_edition(ctx, posted.staff, edition_id, note="Subject and preheader saved.")

    return await run_in_threadpool(work)


@router.post(EDITION + "/rebuild")
async def rebuild_edition(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    return await run_in_threadpool(_rebuild, ctx, posted, edition_id)


def _rebuild(ctx: App, posted: Posted, edition_id: str) -> HTMLResponse:
    try:
        result = rebuild(ctx, edition_id, who=posted.staff.email)
    except DigestError as exc:
        return show_edition(ctx, posted.staff, edition_id, problem=str(exc))
    audit.log(ctx.engine, who=posted.staff.email, action="edition rebuilt", target=edition_id)
    count = result.edition.item_count if result.edition else 0
    return show_edition(
        ctx, posted.staff, edition_id, note=f"Rebuilt from what is collected now: {count} items."
    )


@router.post("/collect")
async def collect_page(ctx: Ctx, posted: PostedDep) -> Response:
    """Fetch every source now (the daily job's work) and say what each gave."""

    def work() -> HTMLResponse:
        try:
            report = collect_now(ctx)
        except DigestError as exc:
            return _collected(ctx, posted, [], str(exc))
        audit.log(
            ctx.engine,
            who=posted.staff.email,
            action="collected",
            detail=f"{report.added} new, {len(report.failed)} source(s) failed",
        )
        return _collected(ctx, posted, report.outcomes, "")

    return await run_in_threadpool(work)


def _collected(
    ctx: App, posted: Posted, outcomes: list[SourceOutcome], problem: str
) -> HTMLResponse:
    back = text_field(posted.form, "back")
    return console(
        ctx.settings,
        posted.staff,
        "web/admin/collected.html.j2",
        title="Collected",
        outcomes=outcomes,
        problem=problem,
        back=back if back.startswith(CONSOLE + "/") else CONSOLE,
        status=400 if problem else 200,
    )
