"""What route handlers get from FastAPI's dependencies: the application context, the
signed-in staff member (nothing under /admin answers without a session), a console form
whose CSRF token checked out, the rate limits and the web app's writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest import clock
from digest.context import App
from digest.staff import sessions
from digest.staff.sessions import Staff
from digest.web.pages import RateLimit
from digest.web.writer import GroupWriter

SESSION_COOKIE = "digest_admin"


class LoginRequired(Exception):
    """A page of the console was asked for without a session: go and log in."""

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted


class Forbidden(Exception):
    """A console form without a session, or with a stale or forged CSRF token."""


@dataclass(slots=True)
class Limits:
    """Per-process rate limits (each app has its own)."""

    signup_ip: RateLimit = field(default_factory=lambda: RateLimit(10, 3600))
    signup_address: RateLimit = field(default_factory=lambda: RateLimit(3, 3600))
    login_ip: RateLimit = field(default_factory=lambda: RateLimit(30, 900))


# Async on purpose: FastAPI runs a plain function dependency in the thread pool, one more
# hop per request for what is only an attribute read.
async def context(request: Request) -> App:
    ctx: App = request.app.state.ctx
    return ctx


async def limits(request: Request) -> Limits:
    found: Limits = request.app.state.limits
    return found


async def writer(request: Request) -> GroupWriter:
    found: GroupWriter = request.app.state.writer
    return found


Ctx = Annotated[App, Depends(context)]
LimitsDep = Annotated[Limits, Depends(limits)]
WriterDep = Annotated[GroupWriter, Depends(writer)]


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


def signed_in(request: Request, ctx: Ctx) -> Staff:
    """The staff member of this request's session (or the login page, or 403)."""
    return require_staff(request, ctx.engine)


@dataclass(frozen=True, slots=True)
class Posted:
    staff: Staff
    form: FormData


async def posted(request: Request, ctx: Ctx) -> Posted:
    """A console form: the session and its CSRF token checked before anything is read."""
    staff, form = await staff_form(request, ctx.engine)
    return Posted(staff, form)


StaffDep = Annotated[Staff, Depends(signed_in)]
PostedDep = Annotated[Posted, Depends(posted)]
