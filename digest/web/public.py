"""The public pages: preferences (and a copy of one's data), sign-up with double opt-in
and its confirmation (the unsubscribe link's are in one_click). Every page is
server-rendered, works without JavaScript, and never says whether an address is
subscribed."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from digest.audience.actions import confirm, set_preferences
from digest.audience.addresses import subscriber_timezone, timezone_names
from digest.audience.confirmations import Asked, asked_by, send_confirmation
from digest.audience.importer import FORMAT_CHOICES
from digest.audience.members import sections_ticked
from digest.audience.privacy import export_subscriber
from digest.audience.signup import public_lists, request_subscription
from digest.config import Settings
from digest.context import App
from digest.errors import AudienceError, ConfigError
from digest.store.audience import chosen_sections, memberships_of, set_sections, subscriber_by_id
from digest.store.db import one_writer
from digest.web.deps import Ctx, Limits, LimitsDep
from digest.web.pages import message, render

log = logging.getLogger(__name__)
router = APIRouter()

# A sign-up's answer never comes sooner than this after its request: a new address is a
# few inserts more than a known one (about 10% on this machine's 10-17 ms), and the
# difference would tell a visitor which addresses are subscribed.
SIGNUP_FLOOR = 0.03  # seconds


@router.get("/p/{token}", response_class=HTMLResponse)
def preferences_page(ctx: Ctx, token: str) -> HTMLResponse:
    return _preferences(ctx, token, form=None)


@router.post("/p/{token}", response_class=HTMLResponse)
async def preferences_save(ctx: Ctx, token: str, request: Request) -> HTMLResponse:
    # Blanks kept: an empty timezone is a choice (back to the organisation's).
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    # The database work runs in the thread pool: it may wait for SQLite's writer.
    return await run_in_threadpool(lambda: _preferences(ctx, token, form=form))


@router.get("/p/{token}/data.json")
def my_data(ctx: Ctx, token: str) -> Response:
    """Everything stored about the token's person, and nobody else, as a JSON download."""
    claims = ctx.keys.check(token, "preferences", now=ctx.clock())
    if claims is None:
        return bad_link(
            ctx.settings, "This preferences link is not valid: use the link in a recent email."
        )
    found = export_subscriber(ctx.engine, claims.subscriber_id, ctx.keys.forgotten)
    if found is None:
        return bad_link(ctx.settings, "We no longer hold this address.")
    return Response(
        json.dumps(found, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
    )


def _timezone_problem(form: dict[str, list[str]]) -> str | None:
    """What is wrong with the form's timezone (checked before anything is stored), if anything."""
    try:
        subscriber_timezone(form.get("timezone", [""])[0])
    except AudienceError as exc:
        return str(exc)
    return None


def _signup_form(
    ctx: App, sent: bool, status: int = 200, problem: str | None = None
) -> HTMLResponse:
    settings = ctx.settings
    return render(
        settings,
        "web/subscribe.html.j2",
        title="Subscribe",
        lists=[x for x in settings.lists if x.slug in public_lists(settings)],
        formats=FORMAT_CHOICES,
        profiles=settings.print.profiles,
        default_profile=settings.print.default_profile,
        timezones=timezone_names(),
        sent=sent,
        status=status,
        problem=problem,
    )


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_page(ctx: Ctx) -> HTMLResponse:
    return _signup_form(ctx, sent=False)


@router.post("/subscribe", response_class=HTMLResponse)
async def subscribe_post(ctx: Ctx, limits: LimitsDep, request: Request) -> HTMLResponse:
    started = time.monotonic()
    try:
        return await _subscribe(ctx, limits, request)
    finally:
        await asyncio.sleep(max(0.0, SIGNUP_FLOOR - (time.monotonic() - started)))


async def _subscribe(ctx: App, limits: Limits, request: Request) -> HTMLResponse:
    data = parse_qs((await request.body()).decode("utf-8", "replace"))
    address = data.get("email", [""])[0].strip()
    ip = request.client.host if request.client else "unknown"
    if data.get("website", [""])[0]:  # the honeypot: a person never fills it in
        return _signup_form(ctx, sent=True)
    if not limits.signup_ip.allow(ip) or not limits.signup_address.allow(address.casefold()):
        return message(
            ctx.settings, "Please wait", "Too many sign-ups from here: try again in an hour.", 429
        )
    return await run_in_threadpool(_register, ctx, data)


def _register(ctx: App, data: dict[str, list[str]]) -> HTMLResponse:
    problem = _timezone_problem(data)
    if problem is not None:
        return _signup_form(ctx, sent=False, status=400, problem=problem)
    try:
        with one_writer(ctx.engine):
            asked = request_subscription(
                ctx,
                email=data.get("email", [""])[0].strip(),
                name=data.get("name", [""])[0],
                lists=data.get("list", []),
                fmt=data.get("format", ["html"])[0],
                profile=data.get("profile", [""])[0] or None,
                now=ctx.clock(),
                timezone=data.get("timezone", [""])[0],
            )
    except AudienceError as exc:
        return message(ctx.settings, "Not subscribed", str(exc), 400)
    answer = _signup_form(ctx, sent=True)
    # The email goes after the answer: the same work, and time, for every address.
    answer.background = BackgroundTask(send_confirmation, ctx, asked.request_id)
    return answer


@router.get("/c/{token}", response_class=HTMLResponse)
def confirm_page(ctx: Ctx, token: str) -> HTMLResponse:
    """The link in the confirmation email: what it confirms and a Confirm button; its POST
    activates."""
    asked = asked_by(ctx, token)
    if asked is None:
        return bad_link(
            ctx.settings,
            "This confirmation link is not valid or is older than 7 days: subscribe again.",
        )
    return _confirm_answer(ctx.settings, email="", done=False, asked=asked)


@router.post("/c/{token}", response_class=HTMLResponse)
def confirm_now(ctx: Ctx, token: str) -> HTMLResponse:
    try:
        with one_writer(ctx.engine):
            result = confirm(ctx.engine, ctx.keys, token, now=ctx.clock())
    except AudienceError as exc:
        return bad_link(ctx.settings, str(exc))
    return _confirm_answer(ctx.settings, email=result.email, done=True, asked=None)


def bad_link(settings: Settings, why: str) -> HTMLResponse:
    """A link from an email that cannot be used (forged, cut short, expired, or of someone
    we no longer hold): one page, status 400."""
    return message(settings, "This link does not work", why, 400)


def _preferences(ctx: App, token: str, *, form: dict[str, list[str]] | None) -> HTMLResponse:
    settings, engine, keys = ctx.settings, ctx.engine, ctx.keys
    claims = keys.check(token, "preferences", now=ctx.clock())
    if claims is None:
        return bad_link(
            settings, "This preferences link is not valid: use the link in a recent email."
        )
    public = [x for x in settings.lists if x.slug != settings.edition.preview_list]
    leaving = form is not None and form.get("action") == ["leave"]
    problem = None
    if form is not None and not leaving:
        problem = _timezone_problem(form) or _sections_problem(settings, form)
    if form is not None and problem is None:
        try:
            with one_writer(engine):
                _save_choices(ctx, token, form, public)
                _save_sections(ctx, claims.subscriber_id, form)
        except (AudienceError, ConfigError) as exc:
            return message(settings, "Not saved", str(exc), 400)
    with engine.connect() as conn:
        sub = subscriber_by_id(conn, claims.subscriber_id)
        members = memberships_of(conn, claims.subscriber_id) if sub is not None else []
    if sub is None:
        return bad_link(settings, "We no longer hold this address.")
    joined = {m.list_slug for m in members if m.status != "unsubscribed"}
    first = members[0] if members else None
    return render(
        settings,
        "web/preferences.html.j2",
        title="Your choices",
        email=sub.email,
        lists=public,
        joined=joined,
        formats=FORMAT_CHOICES,
        current_format=first.format if first else "html",
        profiles=settings.print.profiles,
        current_profile=(
            first.profile if first and first.profile else settings.print.default_profile
        ),
        timezones=timezone_names(),
        current_timezone=sub.timezone or "",
        sections=[(key, settings.edition.title_for(key)) for key in settings.edition.sections],
        chosen_sections=set(
            (chosen_sections(first.sections) if first else None) or settings.edition.sections
        ),
        saved=form is not None and problem is None,
        problem=problem,
        status=400 if problem else 200,
        data_link=ctx.urls.preferences(token) + "/data.json",
    )


def _save_choices(ctx: App, token: str, form: dict[str, list[str]], public: list[Any]) -> None:
    if form.get("action") == ["leave"]:
        set_preferences(ctx, token, leave_all=True, now=ctx.clock())
        return
    chosen = set(form.get("list", []))
    set_preferences(
        ctx,
        token,
        lists={x.slug: x.slug in chosen for x in public},
        fmt=form.get("format", [""])[0] or None,
        profile=form.get("profile", [""])[0] or None,
        timezone=form["timezone"][0] if "timezone" in form else None,  # absent: as it is
        now=ctx.clock(),
    )


SHOWN = "sections_shown"  # the form had the sections' checkboxes (none ticked is a choice)
NO_SECTIONS = (
    "pick at least one part of the digest (the editor's note always comes); to stop "
    "getting it, use “Leave everything”."
)


def _sections_problem(settings: Settings, form: dict[str, list[str]]) -> str | None:
    """Refuse a save with no section ticked: a digest of nothing is not a choice to make."""
    if SHOWN in form and not set(form.get("section", [])) & set(settings.edition.sections):
        return NO_SECTIONS
    return None


def _save_sections(ctx: App, subscriber_id: int, form: dict[str, list[str]]) -> None:
    """Store the ticked sections: every one ticked is stored as no choice (NULL), so a
    section added later reaches them too."""
    if form.get("action") == ["leave"] or SHOWN not in form:
        return
    chosen = sections_ticked(ctx.settings, form.get("section", []))
    with ctx.engine.begin() as conn:
        set_sections(conn, subscriber_id, chosen, now=ctx.clock())


def _confirm_answer(
    settings: Settings, *, email: str, done: bool, asked: Asked | None
) -> HTMLResponse:
    return render(
        settings, "web/confirm.html.j2", title="Confirm", email=email, done=done, asked=asked
    )
