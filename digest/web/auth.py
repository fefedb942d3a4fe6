"""The console's door: login (argon2, lock-out), the session cookie, logout, and what a
request without a session gets (the login page for a GET, 403 for a form)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from digest.config import Settings
from digest.staff import audit, sessions, users
from digest.staff.sessions import Staff
from digest.urls import CONSOLE, console_path
from digest.web.deps import (
    SESSION_COOKIE,
    Ctx,
    Forbidden,
    LimitsDep,
    LoginRequired,
    PostedDep,
    current_staff,
    text_field,
)
from digest.web.pages import message, render

LOGIN_COOKIE = "digest_login"
LOGIN = console_path("login")
router = APIRouter()


def safe_next(value: str) -> str:
    """Where to go after login: a console path, never another site."""
    parts = urlsplit(value)
    inside = value == CONSOLE or value.startswith(CONSOLE + "/")
    if (
        inside
        and not parts.scheme
        and not parts.netloc
        and value.isprintable()
        and "\\" not in value
    ):
        return value
    return CONSOLE


def _cookie_options(settings: Settings) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": settings.delivery.base_url.startswith("https://"),
        "path": CONSOLE,
    }


def install_door(app: FastAPI) -> None:
    """A console page without a session goes to the login; a form gets 403."""

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"{LOGIN}?next={quote(exc.wanted, safe='/')}", 303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        settings: Settings = request.app.state.ctx.settings
        return message(settings, "Not allowed", str(exc), 403)


def _login_page(
    settings: Settings, next_path: str, problem: str = "", status: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    page = render(
        settings,
        "web/admin/login.html.j2",
        title="Staff login",
        csrf=token,
        next=safe_next(next_path),
        problem=problem,
        status=status,
    )
    page.set_cookie(LOGIN_COOKIE, token, max_age=3600, **_cookie_options(settings))
    return page


@router.get(LOGIN, response_class=HTMLResponse)
def login_form(ctx: Ctx, request: Request, next: str = CONSOLE) -> Response:
    if current_staff(request, ctx.engine) is not None:
        return RedirectResponse(safe_next(next), 303)
    return _login_page(ctx.settings, next)


@router.post(LOGIN)
async def login_post(ctx: Ctx, limits: LimitsDep, request: Request) -> Response:
    settings = ctx.settings
    form = await request.form()
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = text_field(form, "csrf")
    next_path = text_field(form, "next") or CONSOLE
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return _login_page(
            settings, next_path, "The login form had expired: please try again.", 403
        )
    ip = request.client.host if request.client else "unknown"
    if not limits.login_ip.allow(ip):
        return _login_page(
            settings, next_path, "Too many attempts from here: wait 15 minutes.", 429
        )
    result = await run_in_threadpool(  # argon2 takes tens of milliseconds
        users.log_in,
        ctx.engine,
        text_field(form, "email"),
        str(form.get("password") or ""),
        now=ctx.clock(),
    )
    if result.locked_until is not None:
        local = result.locked_until.astimezone(settings.organisation.zone)
        problem = (
            "Too many failed attempts: this account is locked until "
            f"{local:%H:%M}. Try again then, or ask another staff member to reset it."
        )
        return _login_page(settings, next_path, problem, 429)
    if result.user_id is None:
        return _login_page(settings, next_path, "Wrong email address or password.", 401)
    token = await run_in_threadpool(sessions.start, ctx.engine, result.user_id, now=ctx.clock())
    response = RedirectResponse(safe_next(next_path), 303)
    response.set_cookie(SESSION_COOKIE, token, **_cookie_options(settings))
    response.delete_cookie(LOGIN_COOKIE, path=CONSOLE)
    return response


@router.post(console_path("logout"))
async def logout(ctx: Ctx, posted: PostedDep, request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await run_in_threadpool(_log_out, ctx.engine, token, posted.staff)
    response = RedirectResponse(LOGIN, 303)
    response.delete_cookie(SESSION_COOKIE, path=CONSOLE)
    return response


def _log_out(engine: Engine, token: str, staff: Staff) -> None:
    sessions.end(engine, token)
    audit.log(engine, who=staff.email, action="logged out")
