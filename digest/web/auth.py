"""The console's door: login (argon2, lock-out), the session cookie, CSRF on every form, and
the rule that nothing under /admin answers without a session."""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest import clock
from digest.config import Settings
from digest.staff import audit, sessions, users
from digest.staff.sessions import Staff
from digest.web.pages import RateLimit, message, render

SESSION_COOKIE = "digest_admin"
LOGIN_COOKIE = "digest_login"
CONSOLE = "/admin"


class LoginRequired(Exception):
    """A page of the console was asked for without a session: go and log in."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted


class Forbidden(Exception):
    """A console form without a session, or with a stale or forged CSRF token."""


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


def current_staff(request: Request, engine: Engine) -> Staff | None:
    return sessions.find(engine, request.cookies.get(SESSION_COOKIE), now=clock.now())


def require_staff(request: Request, engine: Engine) -> Staff:
    staff = current_staff(request, engine)
    if staff is not None:
        return staff
    if request.method in ("GET", "HEAD"):
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(wanted)
    raise Forbidden("You are not logged in (or your session ended): log in and try again.")


async def staff_form(request: Request, engine: Engine) -> tuple[Staff, FormData]:
    """The person and the form they posted, once the session and its CSRF token check out."""
    staff = await run_in_threadpool(require_staff, request, engine)
    form = await request.form()
    given = form.get("csrf")
    if not isinstance(given, str) or not staff.csrf_ok(given):
        raise Forbidden(
            "This form is out of date (its security token did not match): go back, "
            "reload the page and try again."
        )
    return staff, form


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def auth_routes(app: FastAPI, settings: Settings, engine: Engine) -> None:
    per_ip = RateLimit(30, 900)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"{CONSOLE}/login?next={quote(exc.wanted, safe='/')}", 303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return message(settings, "Not allowed", str(exc), 403)

    def login_page(next_path: str, problem: str = "", status: int = 200) -> HTMLResponse:
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
        page.headers["Cache-Control"] = "no-store"
        return page

    @app.get(f"{CONSOLE}/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = CONSOLE) -> Response:
        if current_staff(request, engine) is not None:
            return RedirectResponse(safe_next(next), 303)
        return login_page(next)

    @app.post(f"{CONSOLE}/login")
    async def login_post(request: Request) -> Response:
        form = await request.form()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = text_field(form, "csrf")
        next_path = text_field(form, "next") or CONSOLE
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            return login_page(next_path, "The login form had expired: please try again.", 403)
        ip = request.client.host if request.client else "unknown"
        if not per_ip.allow(ip):
            return login_page(next_path, "Too many attempts from here: wait 15 minutes.", 429)
        result = await run_in_threadpool(  # argon2 takes tens of milliseconds
            users.log_in,
            engine,
            text_field(form, "email"),
            str(form.get("password") or ""),
            now=clock.now(),
        )
        if result.locked_until is not None:
            local = result.locked_until.astimezone(settings.organisation.zone)
            problem = (
                "Too many failed attempts: this account is locked until "
                f"{local:%H:%M}. Try again then, or ask another staff member to reset it."
            )
            return login_page(next_path, problem, 429)
        if result.user_id is None:
            return login_page(next_path, "Wrong email address or password.", 401)
        token = await run_in_threadpool(sessions.start, engine, result.user_id, now=clock.now())
        response = RedirectResponse(safe_next(next_path), 303)
        response.set_cookie(SESSION_COOKIE, token, **_cookie_options(settings))
        response.delete_cookie(LOGIN_COOKIE, path=CONSOLE)
        return response

    @app.post(f"{CONSOLE}/logout")
    async def logout(request: Request) -> Response:
        staff, _ = await staff_form(request, engine)
        await run_in_threadpool(_log_out, engine, request.cookies.get(SESSION_COOKIE, ""), staff)
        response = RedirectResponse(f"{CONSOLE}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=CONSOLE)
        return response


def _log_out(engine: Engine, token: str, staff: Staff) -> None:
    sessions.end(engine, token)
    audit.log(engine, who=staff.email, action="logged out")
