"""One subscriber's page in the console: what is stored and sent, and what staff change:
name, format, print profile, sections and lists; the mailing address for paper copies; off one list
or everything; back on a list when they asked in writing (the reason recorded); a copy of
their data, and forgetting them (asked twice: staff type the address to confirm)."""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest.audience.importer import FORMAT_CHOICES
from digest.audience.members import Changes, add, details_by_id, edit, remove
from digest.audience.privacy import export_subscriber, forget
from digest.context import App
from digest.dispatch.events import events_of
from digest.errors import DigestError
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.store import audience, ledger
from digest.store.mailing import FIELDS, LABELS, MailingAddress, address_of, longest, set_address
from digest.urls import CONSOLE, console_path
from digest.web.console import console, missing
from digest.web.deps import Ctx, Posted, PostedDep, StaffDep, text_field

router = APIRouter(prefix=CONSOLE)
PERSON = "/subscribers/{subscriber_id:int}"


@router.get(PERSON, response_class=HTMLResponse)
def person(ctx: Ctx, staff: StaffDep, subscriber_id: int, done: str = "") -> HTMLResponse:
    return _page(ctx, staff, subscriber_id, done=done[:300])


def _page(
    ctx: App,
    staff: Staff,
    subscriber_id: int,
    *,
    done: str = "",
    typed: MailingAddress | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The page; ``typed`` is an address refused as given, kept in the form to correct."""
    with ctx.engine.connect() as conn:
        who = details_by_id(conn, subscriber_id, ctx.keys.forgotten)
        if who is None or who.status == audience.FORGOTTEN:
            return missing(ctx.settings, staff)
        sends = ledger.sends_to(conn, subscriber_id)
        events = events_of(conn, who.email)
    postal = who.mailing_address
    return console(
        ctx.settings,
        staff,
        "web/admin/subscriber.html.j2",
        title=who.email,
        status=status,
        who=who,
        sends=sends,
        events=events,
        done=done,
        lists=ctx.settings.lists,
        formats=FORMAT_CHOICES,
        profiles=ctx.settings.print.profiles,
        sections=[
            (key, ctx.settings.edition.title_for(key)) for key in ctx.settings.edition.sections
        ],
        postal=postal,
        typed=typed or postal or MailingAddress(),
        address_fields=[(name, LABELS[name], longest(name)) for name in FIELDS],
        address_labels=LABELS,
    )


@router.post(PERSON + "/remove")
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
    return _back(subscriber_id, done)


def _back(subscriber_id: int, said: str) -> RedirectResponse:
    return RedirectResponse(
        console_path(f"subscribers/{subscriber_id}?done={quote(said[:300])}"), status_code=303
    )


@router.post(PERSON + "/edit")
async def edit_person(ctx: Ctx, posted: PostedDep, subscriber_id: int) -> Response:
    return await run_in_threadpool(_edit, ctx, posted, subscriber_id)


def _edit(ctx: App, posted: Posted, subscriber_id: int) -> Response:
    form = posted.form
    changes = Changes(
        name=text_field(form, "name"),
        fmt=text_field(form, "format") or None,
        profile=text_field(form, "profile") or None,
        lists=frozenset(v for v in form.getlist("list") if isinstance(v, str)),
        sections=(
            frozenset(v for v in form.getlist("section") if isinstance(v, str))
            if "sections_shown" in form
            else None
        ),
    )
    try:
        said = edit(ctx, subscriber_id, changes, now=ctx.clock())
    except DigestError as exc:
        return _back(subscriber_id, f"not changed: {exc}")
    if not said:
        return _back(subscriber_id, "nothing to change")
    target = _address(ctx, subscriber_id)
    audit.log(
        ctx.engine,
        who=posted.staff.email,
        action="subscriber changed",
        target=target,
        detail=", ".join(said),
    )
    return _back(subscriber_id, "changed: " + ", ".join(said))


@router.post(PERSON + "/resubscribe")
async def resubscribe(ctx: Ctx, posted: PostedDep, subscriber_id: int) -> Response:
    return await run_in_threadpool(_resubscribe, ctx, posted.staff, posted.form, subscriber_id)


def _resubscribe(ctx: App, staff: Staff, form: FormData, subscriber_id: int) -> Response:
    """Back on a list they left, because they asked in writing: the reason is required and
    goes in the audit log."""
    reason = text_field(form, "reason")[:500]
    list_slug = text_field(form, "list")
    address = _address(ctx, subscriber_id)
    if not reason:
        return _back(subscriber_id, "not resubscribed: say why (their letter, email or form)")
    try:
        said = add(
            ctx,
            address,
            list_slug=list_slug,
            name="",
            fmt=None,
            profile=None,
            pending=False,
            resubscribe=True,
            now=ctx.clock(),
        )
    except DigestError as exc:
        return _back(subscriber_id, f"not resubscribed: {exc}")
    audit.log(
        ctx.engine,
        who=staff.email,
        action="subscriber resubscribed",
        target=address,
        detail=f"{list_slug}: {reason}",
    )
    return _back(subscriber_id, said)


def _address(ctx: App, subscriber_id: int) -> str:
    with ctx.engine.connect() as conn:
        row = audience.subscriber_by_id(conn, subscriber_id)
    return row.email_key if row is not None else str(subscriber_id)


@router.post(PERSON + "/address")
async def edit_mailing_address(ctx: Ctx, posted: PostedDep, subscriber_id: int) -> Response:
    return await run_in_threadpool(_set_mailing_address, ctx, posted, subscriber_id)


def _set_mailing_address(ctx: App, posted: Posted, subscriber_id: int) -> Response:
    """Staff set, correct or (every field empty) remove the address paper is posted to.
    A refused one comes back in the form with the reason, never in a URL; the audit log
    says what was done, not the address."""
    typed = MailingAddress.cleaned({name: text_field(posted.form, name) for name in FIELDS})
    problem = typed.problem(where="fields")
    if problem:
        said = f"address not saved: {problem}"
        return _page(ctx, posted.staff, subscriber_id, done=said, typed=typed, status=400)
    with ctx.engine.begin() as conn:
        row = audience.subscriber_by_id(conn, subscriber_id)
        if row is None:
            return missing(ctx.settings, posted.staff)
        before = address_of(conn, subscriber_id)
        if before == (None if typed.is_empty() else typed):
            return _back(subscriber_id, "nothing to change")
        set_address(conn, subscriber_id, typed, now=ctx.clock())
    said = "mailing address removed" if typed.is_empty() else "mailing address saved"
    audit.log(
        ctx.engine,
        who=posted.staff.email,
        action="subscriber changed",
        target=row.email_key,
        detail=said,
    )
    return _back(subscriber_id, said)


@router.get(PERSON + "/data.json")
def person_data(ctx: Ctx, staff: StaffDep, subscriber_id: int) -> Response:
    """Everything stored about them, as a JSON download; audited by id, not address."""
    found = export_subscriber(ctx.engine, subscriber_id, ctx.keys.forgotten)
    if found is None:
        return missing(ctx.settings, staff)
    audit.log(
        ctx.engine, who=staff.email, action="subscriber data downloaded", target=_by_id(found)
    )
    return Response(
        json.dumps(found, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="person-{subscriber_id}.json"'},
    )


def _by_id(found: dict[str, object]) -> str:
    subscriber = found["subscriber"]
    return f"subscriber #{subscriber['id']}" if isinstance(subscriber, dict) else ""


@router.post(PERSON + "/forget")
async def forget_person(ctx: Ctx, posted: PostedDep, subscriber_id: int) -> Response:
    return await run_in_threadpool(_forget, ctx, posted, subscriber_id)


def _forget(ctx: App, posted: Posted, subscriber_id: int) -> Response:
    """The first press asks; the second forgets them only when the address typed is
    theirs (any case). ``forget`` writes the audit line, with the mark and the id."""
    staff = posted.staff
    with ctx.engine.connect() as conn:
        who = details_by_id(conn, subscriber_id)
    if who is None or who.status == audience.FORGOTTEN:
        return missing(ctx.settings, staff)
    typed = text_field(posted.form, "confirm")
    if "confirm" not in posted.form or not typed:
        return _ask_forget(ctx, staff, who)
    if typed.strip().casefold() != who.email.strip().casefold():
        said = "Not forgotten: the address typed is not theirs. Type it exactly to confirm."
        return _ask_forget(ctx, staff, who, wrong=said, status=400)
    try:
        done = forget(ctx.engine, ctx.keys, who.email, who=staff.email, now=ctx.clock())
    except DigestError as exc:
        return _ask_forget(ctx, staff, who, wrong=f"Not forgotten: {exc}", status=409)
    return console(
        ctx.settings, staff, FORGET_PAGE, title="Forgotten", forgotten=done.said(), who=None
    )


FORGET_PAGE = "web/admin/forget.html.j2"


def _ask_forget(
    ctx: App, staff: Staff, who: object, *, wrong: str = "", status: int = 200
) -> HTMLResponse:
    return console(
        ctx.settings,
        staff,
        FORGET_PAGE,
        title="Forget this person?",
        who=who,
        wrong=wrong,
        forgotten="",
        status=status,
    )
