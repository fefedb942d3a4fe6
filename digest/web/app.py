"""The FastAPI app. Public pages (one-click unsubscribe so far) and SendGrid's event webhook;
every page is server-rendered, works without JavaScript, and carries strict headers."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest import clock
from digest.audience.actions import confirm, set_preferences, unsubscribe
from digest.audience.signup import SignupRequest, public_lists, request_subscription
from digest.audience.tokens import Keyring, keyring
from digest.config import Secrets, Settings
from digest.dispatch.copies import send_copies
from digest.dispatch.events import parse_events, record_events, verify_signature
from digest.dispatch.send import choose_transport
from digest.errors import AudienceError, ConfigError, DigestError
from digest.models import Recipient, RenderedEmail
from digest.render.templates import html_env, text_env
from digest.render.text import wrap
from digest.store.audience import memberships_of, subscriber_by_id
from digest.store.db import one_writer
from digest.store.editions import get_edition, listing, state_of
from digest.web.admin import IMPORT_PATH, admin_routes
from digest.web.limits import BodyLimit
from digest.web.pages import (
    MAX_BODY,
    MAX_UPLOAD,
    SECURITY_HEADERS,
    RateLimit,
    message,
    render,
    without_personal_links,
)

log = logging.getLogger(__name__)
WEEKLY = re.compile(r"^\d{4}-W\d{2}$")


def create_app(settings: Settings, engine: Engine, secrets: Secrets) -> FastAPI:
    """The app for one organisation's settings and database."""
    keys = keyring(
        secrets.secret_key, secrets.previous_secret_key, settings.var_dir, may_create=False
    )
    app = FastAPI(title=settings.organisation.name, docs_url=None, redoc_url=None, openapi_url=None)

    app.add_middleware(BodyLimit, limit=MAX_BODY, uploads={IMPORT_PATH: MAX_UPLOAD})
    _error_pages(app, settings)

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/u/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        # Never unsubscribe on GET: mail scanners fetch every link.
        return _unsubscribe_answer(settings, engine, keys, token, act=False)

    @app.post("/u/{token}", response_class=HTMLResponse)
    def unsubscribe_now(token: str) -> HTMLResponse:
        # One button, or RFC 8058's one-click POST (List-Unsubscribe=One-Click): the same.
        return _unsubscribe_answer(settings, engine, keys, token, act=True)

    @app.get("/p/{token}", response_class=HTMLResponse)
    def preferences_page(token: str) -> HTMLResponse:
        return _preferences(settings, engine, keys, token, form=None)

    @app.post("/p/{token}", response_class=HTMLResponse)
    async def preferences_save(token: str, request: Request) -> HTMLResponse:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        # The database work runs in the thread pool: it may wait for SQLite's writer.
        return await run_in_threadpool(
            lambda: _preferences(settings, engine, keys, token, form=form)
        )

    _archive_routes(app, settings, engine)
    _signup_routes(app, settings, engine, secrets, keys)
    admin_routes(app, settings, engine, secrets)

    @app.post("/webhooks/sendgrid")
    async def sendgrid_events(request: Request) -> Response:
        return await _webhook(settings, engine, secrets, request)

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


FORMATS = (
    ("html", "Email with pictures and links (HTML)"),
    ("text", "Plain text only"),
    ("print", "A printable edition to post to someone inside"),
)


def _preferences(
    settings: Settings,
    engine: Engine,
    keys: Keyring,
    token: str,
    *,
    form: dict[str, list[str]] | None,
) -> HTMLResponse:
    claims = keys.check(token, "preferences", now=clock.now())
    if claims is None:
        return message(
            settings,
            "This link does not work",
            "This preferences link is not valid: use the link in a recent email.",
            400,
        )
    public = [x for x in settings.lists if x.slug != settings.edition.preview_list]
    if form is not None:
        try:
            with one_writer(engine):
                _save_choices(settings, engine, keys, token, form, public)
        except (AudienceError, ConfigError) as exc:
            return message(settings, "Not saved", str(exc), 400)
    with engine.connect() as conn:
        sub = subscriber_by_id(conn, claims.subscriber_id)
        members = memberships_of(conn, claims.subscriber_id) if sub is not None else []
    if sub is None:
        return message(settings, "This link does not work", "We no longer hold this address.", 400)
    joined = {m.list_slug for m in members if m.status != "unsubscribed"}
    first = members[0] if members else None
    return render(
        settings,
        "web/preferences.html.j2",
        title="Your choices",
        email=sub.email,
        lists=public,
        joined=joined,
        formats=FORMATS,
        current_format=first.format if first else "html",
        profiles=settings.print.profiles,
        current_profile=(
            first.profile if first and first.profile else settings.print.default_profile
        ),
        saved=form is not None,
    )


def _save_choices(
    settings: Settings,
    engine: Engine,
    keys: Keyring,
    token: str,
    form: dict[str, list[str]],
    public: list[Any],
) -> None:
    if form.get("action") == ["leave"]:
        set_preferences(settings, engine, keys, token, leave_all=True, now=clock.now())
        return
    chosen = set(form.get("list", []))
    set_preferences(
        settings,
        engine,
        keys,
        token,
        lists={x.slug: x.slug in chosen for x in public},
        fmt=form.get("format", [""])[0] or None,
        profile=form.get("profile", [""])[0] or None,
        now=clock.now(),
    )


def _published(engine: Engine) -> list[Any]:
    """Weekly editions that went out, newest first (alerts and unsent editions stay out)."""
    with engine.connect() as conn:
        return [row for row in listing(conn) if WEEKLY.match(row.id) and row.state == "sent"]


def _signup_routes(
    app: FastAPI, settings: Settings, engine: Engine, secrets: Secrets, keys: Keyring
) -> None:
    """Subscribe (double opt-in) and confirm. The answer never says whether an address is
    already subscribed."""
    per_ip, per_address = RateLimit(10, 3600), RateLimit(3, 3600)
    offered = [x for x in settings.lists if x.slug in public_lists(settings)]

    def form(sent: bool, status: int = 200) -> HTMLResponse:
        return render(
            settings,
            "web/subscribe.html.j2",
            title="Subscribe",
            lists=offered,
            formats=FORMATS,
            profiles=settings.print.profiles,
            default_profile=settings.print.default_profile,
            sent=sent,
            status=status,
        )

    @app.get("/subscribe", response_class=HTMLResponse)
    def subscribe_page() -> HTMLResponse:
        return form(sent=False)

    @app.post("/subscribe", response_class=HTMLResponse)
    async def subscribe_post(request: Request) -> HTMLResponse:
        data = parse_qs((await request.body()).decode("utf-8", "replace"))
        address = data.get("email", [""])[0].strip()
        ip = request.client.host if request.client else "unknown"
        if data.get("website", [""])[0]:  # the honeypot: a person never fills it in
            return form(sent=True)
        if not per_ip.allow(ip) or not per_address.allow(address.casefold()):
            return message(
                settings, "Please wait", "Too many sign-ups from here: try again in an hour.", 429
            )
        return await run_in_threadpool(lambda: register(data))

    def register(data: dict[str, list[str]]) -> HTMLResponse:
        try:
            with one_writer(engine):
                asked = request_subscription(
                    settings,
                    engine,
                    email=data.get("email", [""])[0].strip(),
                    name=data.get("name", [""])[0],
                    lists=data.get("list", []),
                    fmt=data.get("format", ["html"])[0],
                    profile=data.get("profile", [""])[0] or None,
                    now=clock.now(),
                )
        except AudienceError as exc:
            return message(settings, "Not subscribed", str(exc), 400)
        if asked.needs_confirmation:
            _send_confirmation(settings, secrets, keys, asked)
        return form(sent=True)

    _confirm_routes(app, settings, engine, keys)


def _confirm_routes(app: FastAPI, settings: Settings, engine: Engine, keys: Keyring) -> None:
    """The link in the confirmation email: a Confirm button, and its POST activates."""

    @app.get("/c/{token}", response_class=HTMLResponse)
    def confirm_page(token: str) -> HTMLResponse:
        if keys.check(token, "confirm", now=clock.now()) is None:
            return message(
                settings,
                "This link does not work",
                "This confirmation link is not valid or is older than 7 days: subscribe again.",
                400,
            )
        return _confirm_answer(settings, email="", done=False)

    @app.post("/c/{token}", response_class=HTMLResponse)
    def confirm_now(token: str) -> HTMLResponse:
        try:
            with one_writer(engine):
                result = confirm(engine, keys, token, now=clock.now())
        except AudienceError as exc:
            return message(settings, "This link does not work", str(exc), 400)
        return _confirm_answer(settings, email=result.email, done=True)


def _confirm_answer(settings: Settings, *, email: str, done: bool) -> HTMLResponse:
    return render(settings, "web/confirm.html.j2", title="Confirm", email=email, done=done)


def _send_confirmation(
    settings: Settings, secrets: Secrets, keys: Keyring, asked: SignupRequest
) -> None:
    now = clock.now()
    token = keys.make("confirm", asked.subscriber_id, asked.list_slug, now=now)
    names = ", ".join(x.name for x in settings.lists if x.slug == asked.list_slug)
    text = (
        text_env()
        .get_template("email/confirm.txt.j2")
        .render(
            org=settings.organisation,
            wrap=wrap,
            lists=names or "our emails",
            link=f"{settings.delivery.base_url}/c/{token}",
        )
    )
    email = RenderedEmail(f"Confirm: {settings.organisation.name}", "", text)
    person = Recipient(asked.subscriber_id, asked.email, "")
    try:
        send_copies(
            settings,
            secrets,
            email,
            choose_transport(settings, secrets, now),
            [person],
            list_slug=asked.list_slug,
            mark="",
            now=now,
            label="confirm",
            variant="text",
        )
    except DigestError:
        log.exception("could not send the confirmation to subscriber %s", asked.subscriber_id)


def _archive_routes(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """The archive: sent weekly editions only, without any personal link."""

    @app.get("/archive", response_class=HTMLResponse)
    def archive_index() -> HTMLResponse:
        return render(
            settings,
            "web/archive.html.j2",
            title="Past editions",
            editions=_published(engine),
            base=settings.delivery.base_url,
        )

    @app.get("/archive.atom")
    def archive_feed() -> Response:
        published = _published(engine)
        updated = published[0].built_at if published else clock.now()
        xml = (
            html_env()
            .get_template("web/archive.atom.j2")
            .render(
                org=settings.organisation,
                editions=published,
                base=settings.delivery.base_url,
                updated=updated.isoformat(),
            )
        )
        return Response(xml, media_type="application/atom+xml")

    @app.get("/archive/{edition_id}", response_class=HTMLResponse)
    def archive_page(edition_id: str) -> HTMLResponse:
        with engine.connect() as conn:
            public = WEEKLY.match(edition_id) and state_of(conn, edition_id) == "sent"
            stored = get_edition(conn, edition_id) if public else None
        if stored is None:  # unknown, an alert, or not sent yet (a draft stays private)
            return message(settings, "Not found", "There is no such edition.", 404)
        html = without_personal_links(stored.email.html, settings.delivery.base_url)
        return HTMLResponse(html)


def _unsubscribe_answer(
    settings: Settings, engine: Engine, keys: Keyring, token: str, *, act: bool
) -> HTMLResponse:
    claims = keys.check(token, "unsubscribe", now=clock.now())
    if claims is None:
        return message(
            settings,
            "This link does not work",
            "This unsubscribe link is not valid (it may be cut short). Use the link in "
            "a recent email, or write to us.",
            400,
        )
    list_name = next(
        (x.name for x in settings.lists if x.slug == claims.list_slug), claims.list_slug
    )
    email, changed = "", None
    if act:
        try:
            with one_writer(engine):
                result = unsubscribe(engine, keys, token, now=clock.now(), origin="web")
        except AudienceError as exc:
            return message(settings, "This link does not work", str(exc), 400)
        email, changed = result.email, result.changed
    return render(
        settings,
        "web/unsubscribe.html.j2",
        title="Unsubscribe",
        done=act,
        email=email,
        changed=changed,
        list_name=list_name,
    )


async def _webhook(
    settings: Settings, engine: Engine, secrets: Secrets, request: Request
) -> Response:
    """Verify, then parse, then act: a bad signature stores nothing (403); our own failure
    is a 5xx so SendGrid sends the events again."""
    body = await request.body()
    key = secrets.webhook_public_key
    signature = request.headers.get("X-Twilio-Email-Event-Webhook-Signature", "")
    stamp = request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", "")
    if not key or not verify_signature(key, body, signature, stamp, now=clock.now()):
        return Response("bad signature", status_code=403)
    try:
        events = parse_events(body)
    except ValueError:
        return Response("not a list of events", status_code=400)

    def store() -> Any:
        with one_writer(engine):
            return record_events(engine, events, now=clock.now())

    try:
        counts = await run_in_threadpool(store)
    except Exception:  # the database, our side: SendGrid retries on a 5xx
        log.exception("could not store %d SendGrid events", len(events))
        return Response("try again", status_code=503)
    log.info("sendgrid events: %s", dict(counts))
    return Response(status_code=200)
