"""The public archive: sent editions without any personal link. The index and its Atom
feed list the weekly editions; a sent alert has its page too (the "View online" link in
it), unlisted. A draft, an unsent or a cancelled edition stays private."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Engine

from digest.lifecycle.states import Kind, State
from digest.render.templates import html_env
from digest.store.editions import get_edition, listing
from digest.web.deps import Ctx
from digest.web.pages import message, render, without_personal_links

router = APIRouter()


def _published(engine: Engine) -> list[Any]:
    """Weekly editions that went out, newest first."""
    with engine.connect() as conn:
        return [r for r in listing(conn) if r.kind == Kind.WEEKLY and r.state == State.SENT]


@router.get("/archive", response_class=HTMLResponse)
def archive_index(ctx: Ctx) -> HTMLResponse:
    return render(
        ctx.settings,
        "web/archive.html.j2",
        title="Past editions",
        editions=_published(ctx.engine),
        base=ctx.settings.delivery.base_url,
    )


@router.get("/archive.atom")
def archive_feed(ctx: Ctx) -> Response:
    published = _published(ctx.engine)
    updated = published[0].built_at if published else ctx.clock()
    xml = (
        html_env()
        .get_template("web/archive.atom.j2")
        .render(
            org=ctx.settings.organisation,
            editions=published,
            base=ctx.settings.delivery.base_url,
            updated=updated.isoformat(),
        )
    )
    return Response(xml, media_type="application/atom+xml")


@router.get("/archive/{edition_id}", response_class=HTMLResponse)
def archive_page(ctx: Ctx, edition_id: str) -> HTMLResponse:
    with ctx.engine.connect() as conn:
        stored = get_edition(conn, edition_id)
    if stored is None or stored.state != State.SENT:
        return message(ctx.settings, "Not found", "There is no such edition.", 404)
    return HTMLResponse(without_personal_links(stored.email.html, ctx.settings.delivery.base_url))
