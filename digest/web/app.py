"""The FastAPI app: the public pages, the archive, SendGrid's event webhook and the staff
console, each a router of module-level handlers that get the application context through
a dependency. Every page carries strict headers."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.config import Settings
from digest.context import App
from digest.staff import users
from digest.web import (
    admin,
    admin_alerts,
    admin_branding,
    admin_decisions,
    admin_desk,
    admin_notes,
    admin_person,
    admin_subscribers,
    archive,
    auth,
    branding,
    healthz,
    one_click,
    public,
    webhook,
)
from digest.web.deps import Limits
from digest.web.headers import StrictHeaders
from digest.web.limits import BodyLimit
from digest.web.pages import MAX_BODY, MAX_UPLOAD, message
from digest.web.writer import GroupWriter

ROUTERS = (
    healthz.router,
    public.router,
    archive.router,
    branding.router,
    webhook.router,
    auth.router,
    admin.router,
    admin_decisions.router,
    admin_desk.router,
    admin_notes.router,
    admin_alerts.router,
    admin_branding.router,
    admin_subscribers.router,
    admin_person.router,
)

# No OpenTelemetry spans, metrics or logs of requests (FastAPI's own, on when a provider is
# configured): nothing here records who follows which link, and asking on every request
# whether one is configured read the environment three times.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(ctx: App) -> FastAPI:
    """The app for one organisation's settings and database."""
    settings = ctx.settings
    ctx.keys  # noqa: B018 - no signing key is an error at start, not at the first click
    users.dummy_hash()  # made now, so the first unknown address at sign-in is not slower
    app = FastAPI(
        title=settings.organisation.name,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.state.ctx = ctx
    app.state.limits = Limits()
    app.state.writer = GroupWriter(ctx.engine)
    app.add_middleware(
        BodyLimit, limit=MAX_BODY, uploads={admin_subscribers.IMPORT_PATH: MAX_UPLOAD}
    )
    app.add_middleware(StrictHeaders)
    _error_pages(app, settings)
    auth.install_door(app)

    app.state.unsubscribe_pages = one_click.Pages(settings)
    app.router.routes[:0] = one_click.ROUTES  # first: the busiest, matched before the rest
    for router in ROUTERS:
        app.include_router(router)
    return app


ERROR_PAGES = {
    404: ("Not found", "There is nothing at this address: check the link."),
    405: ("Not allowed", "This page cannot be used that way."),
}


def _error_pages(app: FastAPI, settings: Settings) -> None:
    """Plain pages, not JSON, for a wrong address, method or parameter."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title, text = ERROR_PAGES.get(exc.status_code, ("Error", str(exc.detail)))
        return message(settings, title, text, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return message(settings, "Bad request", "Something in that request is not right.", 400)
