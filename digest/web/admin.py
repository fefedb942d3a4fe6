"""The staff console under /admin: the dashboard (editions, failures, what comes next), the
activity log and one edition's page (preview, progress, numbers, history). Decisions,
alerts and subscribers have their own modules."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from digest.audience.confirmations import LINK_WORKS_FOR
from digest.context import App
from digest.lifecycle.checking import held_editions, problems_of, report_of
from digest.lifecycle.deliveries import scheduled_later
from digest.lifecycle.editing import contents
from digest.lifecycle.states import CHECKED_BEFORE, DELIVERED, EDITABLE, MOVES, Kind, State
from digest.schedule import next_weekly_send
from digest.staff import audit
from digest.staff.charts import dashboard_charts
from digest.staff.numbers import edition_numbers
from digest.staff.sessions import Staff
from digest.store import content, editions, ledger, operations, signups
from digest.urls import CONSOLE
from digest.web.console import console, missing
from digest.web.deps import Ctx, StaffDep
from digest.web.pages import FRAMED_HEADERS, without_personal_links

DESK_ACTIONS = (
    "edition changed",
    "edition rebuilt",
    "test sent",
    "checks run",
    "checks overridden",
)
router = APIRouter(prefix=CONSOLE)
EDITION = "/editions/{edition_id}"
LIVE = {"pending", "in_flight"}
SHOWN_FAILURES = 10


@router.get("", response_class=HTMLResponse)
def dashboard(ctx: Ctx, staff: StaffDep) -> HTMLResponse:
    now = ctx.clock()
    with ctx.engine.connect() as conn:
        rows = editions.listing(conn)
        states = {r.id: r.state for r in rows}
        failures = [
            e
            for e in editions.latest_events(conn, State.FAILED, SHOWN_FAILURES)
            if states.get(e.edition_id, State.FAILED) == State.FAILED
        ]
        collected = content.last_collect(conn)
        backed_up = operations.last_backup(conn)
        held = held_editions(conn)
        unsent, why = signups.waiting(conn, now, max_age=LINK_WORKS_FOR)
        charts = dashboard_charts(conn, ctx.settings, now)
    return console(
        ctx.settings,
        staff,
        "web/admin/dashboard.html.j2",
        title="Editions",
        rows=rows,
        failures=failures,
        next_send=next_weekly_send(ctx.settings, now),
        last_collect=collected,
        last_backup=backed_up,
        held=held,
        confirmations=(unsent, why),
        zone=ctx.settings.organisation.zone,
        label=lambda state: State(state).label,
        charts=charts,
    )


@router.get("/activity", response_class=HTMLResponse)
def activity(ctx: Ctx, staff: StaffDep) -> HTMLResponse:
    with ctx.engine.connect() as conn:
        entries = audit.recent(conn, limit=500)
    return console(
        ctx.settings, staff, "web/admin/activity.html.j2", title="Activity", entries=entries
    )


@router.get(EDITION, response_class=HTMLResponse)
def edition_page(ctx: Ctx, staff: StaffDep, edition_id: str) -> HTMLResponse:
    return show_edition(ctx, staff, edition_id)


def show_edition(
    ctx: App, staff: Staff, edition_id: str, *, note: str = "", problem: str = ""
) -> HTMLResponse:
    """An edition's page, with what the last action said (a test copy sent, say)."""
    base_url = ctx.settings.delivery.base_url
    with ctx.engine.connect() as conn:
        stored = editions.get_edition(conn, edition_id)
        if stored is None:
            return missing(ctx.settings, staff)
        files = editions.get_files(conn, edition_id)
        progress = ledger.summary(conn, edition_id)
        numbers = edition_numbers(conn, edition_id, tracking=ctx.settings.delivery.tracking)
        changes = editions.history(conn, edition_id)
        edits = [e for e in audit.recent(conn, target=edition_id) if e.action in DESK_ACTIONS]
        checks = report_of(conn, edition_id)
        later = scheduled_later(conn, edition_id, ctx.clock())
    state = State(stored.state)
    desk = contents(ctx, edition_id) if stored.kind == Kind.WEEKLY and state in EDITABLE else None
    live = state is State.SENDING or any(progress["batches"][s] for s in LIVE)
    return console(
        ctx.settings,
        staff,
        "web/admin/edition.html.j2",
        title=f"{edition_id}: {stored.subject}",
        edition=stored,
        text=without_personal_links(stored.email.text, base_url),
        state=state,
        can=buttons(state, held=checks.blocked and not checks.stale, scheduled=bool(later)),
        later=later,
        checks=checks,
        gated=state in CHECKED_BEFORE,
        problems_of=problems_of,
        send_at=stored.send_at.astimezone(ctx.settings.organisation.zone)
        if stored.send_at
        else None,
        pdfs=[f for f in files if f.content_type == "application/pdf"],
        parts=[
            (f.filename, without_personal_links(f.data.decode("utf-8", "replace"), base_url))
            for f in files
            if f.content_type.startswith("text/")
        ],
        progress=progress,
        numbers=numbers,
        changes=changes,
        edits=edits,
        desk=desk,
        section_title=ctx.settings.edition.title_for,
        label=lambda value: State(value).label,
        refresh=5 if live else None,
        note=note,
        problem=problem,
        status=400 if problem else 200,
    )


def buttons(state: State, *, held: bool = False, scheduled: bool = False) -> dict[str, bool]:
    """Which decisions the edition's page offers: the moves the table allows from here,
    no first yes while its checks hold it, and a cancel of a sent edition only while
    some of it waits for its delivery time (``scheduled``)."""
    moves = MOVES[state]
    first_yes = not (held and state in CHECKED_BEFORE)
    return {
        "approve": State.APPROVED in moves and first_yes,
        "send": State.SENDING in moves and state not in (State.APPROVED, State.SENT) and first_yes,
        "reject": State.REJECTED in moves,
        "cancel": State.CANCELLED in moves and (state not in DELIVERED or scheduled),
    }


@router.get(EDITION + "/email.html")
def email_preview(ctx: Ctx, staff: StaffDep, edition_id: str) -> Response:
    with ctx.engine.connect() as conn:
        stored = editions.get_edition(conn, edition_id)
    if stored is None:
        return Response("no such edition", status_code=404)
    html = without_personal_links(stored.email.html, ctx.settings.delivery.base_url)
    return HTMLResponse(html, headers=FRAMED_HEADERS)


@router.get(EDITION + "/files/{name}")
def edition_file(ctx: Ctx, staff: StaffDep, edition_id: str, name: str) -> Response:
    with ctx.engine.connect() as conn:
        found = [f for f in editions.get_files(conn, edition_id) if f.filename == name]
    if not found:
        return Response("no such file", status_code=404)
    return Response(
        found[0].data,
        media_type=found[0].content_type,
        headers={"Content-Disposition": "inline"},
    )


@router.get(EDITION + "/status.json")
def edition_status(ctx: Ctx, staff: StaffDep, edition_id: str) -> Response:
    with ctx.engine.connect() as conn:
        return JSONResponse(ledger.summary(conn, edition_id))
