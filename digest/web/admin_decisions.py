"""Decisions on an edition from the console: approve and send, send now, reject, cancel,
and a test copy to one address.

A send is asked twice: the first press shows the lists and how many people it reaches
now, the second ("Yes, send it") starts it. The page after shows it sending.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from digest.context import App
from digest.errors import DigestError
from digest.lifecycle.alerts import cancel
from digest.lifecycle.checking import override, run_checks
from digest.lifecycle.sending import preview_send, reach_now
from digest.lifecycle.states import State
from digest.lifecycle.test_copies import send_edition_test
from digest.lifecycle.weekly import mark_approved, reject
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.urls import CONSOLE, edition_path
from digest.web.admin import show_edition
from digest.web.console import console, refused, start_send
from digest.web.deps import Ctx, Posted, PostedDep, text_field

router = APIRouter(prefix=CONSOLE + "/editions/{edition_id}")
YES = "yes"


@router.post("/approve")
async def approve_edition(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    return await run_in_threadpool(_decide, ctx, posted, edition_id, "approve")


@router.post("/send")
async def send_edition(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    return await run_in_threadpool(_decide, ctx, posted, edition_id, "send")


def _decide(ctx: App, posted: Posted, edition_id: str, action: str) -> Response:
    staff = posted.staff
    if text_field(posted.form, "confirm") != YES:
        return _ask(ctx, staff, edition_id, action)
    try:
        if action == "approve":
            mark_approved(ctx, edition_id, who=staff.email)
            audit.log(ctx.engine, who=staff.email, action=State.APPROVED, target=edition_id)
        response = start_send(ctx, staff, edition_id)
    except DigestError as exc:
        return refused(ctx.settings, staff, edition_id, str(exc))
    audit.log(ctx.engine, who=staff.email, action=State.SENT, target=edition_id)
    return response


def _ask(ctx: App, staff: Staff, edition_id: str, action: str) -> HTMLResponse:
    """The second question: these lists, this many people, now?"""
    try:
        plan = preview_send(ctx, edition_id, approving=action == "approve")
    except DigestError as exc:
        return refused(ctx.settings, staff, edition_id, str(exc))
    lists = [x.name for x in ctx.settings.lists if x.slug in plan.lists]
    return console(
        ctx.settings,
        staff,
        "web/admin/confirm_send.html.j2",
        title=f"Send {edition_id}?",
        edition=plan.edition,
        action=action,
        lists=lists,
        count=reach_now(ctx, plan),
        transport=plan.transport,
        back=edition_path(edition_id),
    )


@router.post("/checks")
async def check_again(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    """Run the checks on the edition as it is now (after a change, or to ask the links
    again: the ones checked within the day come from the cache)."""
    who = posted.staff.email

    def work() -> HTMLResponse:
        try:
            report = run_checks(ctx.settings, ctx.engine, edition_id, ctx.clock())
        except DigestError as exc:
            return show_edition(ctx, posted.staff, edition_id, problem=str(exc))
        said = ", ".join(f"{c.name} {c.verdict}" for c in report.checks)
        audit.log(
            ctx.engine,
            who=who,
            action="checks run",
            target=edition_id,
            detail=f"ran the checks ({said})",
        )
        return show_edition(ctx, posted.staff, edition_id, note=f"Checked: {said}.")

    return await run_in_threadpool(work)


@router.post("/override")
async def override_checks(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    """Staff let an edition its checks hold go as it is, and say why: recorded in its
    history and the activity log. The Approve (or Send) button then works."""
    who, reason = posted.staff.email, text_field(posted.form, "reason")

    def work() -> HTMLResponse:
        try:
            with ctx.engine.begin() as conn:
                override(conn, edition_id, who=who, reason=reason, now=ctx.clock())
        except DigestError as exc:
            return show_edition(ctx, posted.staff, edition_id, problem=str(exc))
        audit.log(ctx.engine, who=who, action="checks overridden", target=edition_id, detail=reason)
        return show_edition(
            ctx, posted.staff, edition_id, note="Overridden: it may now be approved or sent."
        )

    return await run_in_threadpool(work)


@router.post("/test")
async def test_copy(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    """One copy marked [TEST] to one address; recorded in Activity, never in the ledger."""
    who = posted.staff.email

    def work() -> HTMLResponse:
        try:
            sent_to = send_edition_test(ctx, edition_id, text_field(posted.form, "test_to"))
        except DigestError as exc:
            return show_edition(ctx, posted.staff, edition_id, problem=str(exc))
        audit.log(ctx.engine, who=who, action="test sent", target=edition_id, detail=sent_to)
        return show_edition(ctx, posted.staff, edition_id, note=f"Test sent to {sent_to}.")

    return await run_in_threadpool(work)


@router.post("/reject")
async def reject_edition(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    return await _change(ctx, posted, edition_id, reject, State.REJECTED)


@router.post("/cancel")
async def cancel_edition(ctx: Ctx, posted: PostedDep, edition_id: str) -> Response:
    return await _change(ctx, posted, edition_id, cancel, State.CANCELLED)


async def _change(
    ctx: App,
    posted: Posted,
    edition_id: str,
    change: Callable[..., object],
    done: State,
) -> Response:
    """A no (reject) or a stop (cancel), with the note given; audited; back to the page."""
    note, who = text_field(posted.form, "note"), posted.staff.email

    def work() -> None:
        change(ctx, edition_id, who=who, note=note)
        audit.log(ctx.engine, who=who, action=done, target=edition_id, detail=note)

    try:
        await run_in_threadpool(work)
    except DigestError as exc:
        return refused(ctx.settings, posted.staff, edition_id, str(exc))
    return RedirectResponse(edition_path(edition_id), 303)
