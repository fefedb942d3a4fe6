"""``/u/<token>``: the unsubscribe link of every email, and RFC 8058's one-click POST to it.

The busiest route of the app (mail clients post to it on a click, mail scanners fetch it),
so it is a plain Starlette route: no dependency to solve, nothing to validate but the
token. Its pages are rendered once per list and answer, with a mark where the address
goes, and the address (escaped as the template would) put in per request. The write goes
to the web app's writer, committed with those of the same moment, and the answer comes
after that commit. A GET never unsubscribes: mail scanners fetch every link."""

from __future__ import annotations

import threading

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from digest.audience.actions import unsubscribe_claimed
from digest.collect.sanitize import strip_controls
from digest.config import Settings
from digest.context import App
from digest.errors import AudienceError
from digest.web.pages import render
from digest.web.public import bad_link
from digest.web.writer import GroupWriter

ADDRESS = "\ue000digest-address\ue000"  # where the address goes: nothing escapes or strips it
MOST_PAGES = 256  # pages kept: a few per list (a token names only lists we signed for)
NOT_A_LINK = (
    "This unsubscribe link is not valid (it may be cut short). Use the link in "
    "a recent email, or write to us."
)


class Pages:
    """The unsubscribe pages of one app, rendered once each: (list, done, changed) -> the
    page's bytes before and after the address."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._made: dict[tuple[str, bool, bool | None], tuple[bytes, bytes]] = {}
        self._lock = threading.Lock()
        self._refusal: bytes | None = None

    def page(self, slug: str, email: str, changed: bool | None, *, done: bool) -> HTMLResponse:
        key = (slug, done, changed)
        found = self._made.get(key)
        if found is None:
            found = self._render(slug, changed, done)
            with self._lock:
                if len(self._made) < MOST_PAGES:
                    self._made[key] = found
        before, after = found
        if not done:
            return HTMLResponse(before)
        return HTMLResponse(before + str(escape(strip_controls(email))).encode() + after)

    def _render(self, slug: str, changed: bool | None, done: bool) -> tuple[bytes, bytes]:
        settings = self.settings
        list_name = next((x.name for x in settings.lists if x.slug == slug), slug)
        html = render(
            settings,
            "web/unsubscribe.html.j2",
            title="Unsubscribe",
            done=done,
            email=ADDRESS if done else "",
            changed=changed,
            list_name=list_name,
        ).body
        before, _, after = bytes(html).partition(ADDRESS.encode())
        return before, after

    def not_a_link(self) -> HTMLResponse:
        """The page for a forged or cut link: always the same, status 400."""
        if self._refusal is None:
            self._refusal = bytes(bad_link(self.settings, NOT_A_LINK).body)
        return HTMLResponse(self._refusal, status_code=400)


async def unsubscribe_page(request: Request) -> HTMLResponse:
    ctx: App = request.app.state.ctx
    pages: Pages = request.app.state.unsubscribe_pages
    claims = ctx.keys.check(request.path_params["token"], "unsubscribe", now=ctx.clock())
    if claims is None:
        return pages.not_a_link()
    return pages.page(claims.list_slug, "", None, done=False)


async def unsubscribe_now(request: Request) -> HTMLResponse:
    """One button, or the one-click POST (List-Unsubscribe=One-Click): the same."""
    ctx: App = request.app.state.ctx
    pages: Pages = request.app.state.unsubscribe_pages
    writer: GroupWriter = request.app.state.writer
    now = ctx.clock()
    claims = ctx.keys.check(request.path_params["token"], "unsubscribe", now=now)
    if claims is None:
        return pages.not_a_link()
    try:
        result = await writer.run(
            lambda conn: unsubscribe_claimed(conn, claims, now=now, origin="web")
        )
    except AudienceError as exc:
        return bad_link(ctx.settings, str(exc))
    return pages.page(claims.list_slug, result.email, result.changed, done=True)


ROUTES = [
    Route("/u/{token}", unsubscribe_page, methods=["GET"]),
    Route("/u/{token}", unsubscribe_now, methods=["POST"]),
]
