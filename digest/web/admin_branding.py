"""The organisation's look, previewed in the console: the ``[branding]`` settings as they
are read now (logo, colour and its contrast, footer links, the edition's heading) and a
sample email rendered through the digest's own templates with them."""

from __future__ import annotations

import base64
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from digest.config_branding import contrast_with_white
from digest.context import App
from digest.models import Edition, Item, ItemKind, RenderedEmail, Section
from digest.render import render_email
from digest.render.branding import edition_title, logo_file
from digest.urls import CONSOLE
from digest.web.console import console
from digest.web.deps import Ctx, StaffDep
from digest.web.pages import preview_copy

router = APIRouter(prefix=CONSOLE)


@router.get("/branding", response_class=HTMLResponse)
def branding_page(ctx: Ctx, staff: StaffDep) -> HTMLResponse:
    settings = ctx.settings
    brand = settings.branding
    logo = logo_file(settings)
    return console(
        settings,
        staff,
        "web/admin/branding.html.j2",
        title="Branding",
        brand=brand,
        logo_src=(
            f"data:{logo.content_type};base64,{base64.b64encode(logo.data).decode()}"
            if logo
            else None
        ),
        contrast=contrast_with_white(brand.colour) if brand.colour else None,
        heading=edition_title(settings),
        print_heading=edition_title(settings, "print"),
        email=_sample(ctx),
    )


def _sample(ctx: App) -> RenderedEmail:
    """A small edition (an editor's note and one story) in the current branding."""
    settings, now = ctx.settings, ctx.clock()

    def item(key: str, title: str, text: str, kind: ItemKind) -> Item:
        return Item(
            key=key,
            source="sample",
            section="news",
            title=title,
            url=settings.organisation.website if kind is ItemKind.ARTICLE else None,
            summary=text,
            body_html=f"<p>{text}</p>",
            published=now - timedelta(hours=1),
            first_seen=now,
            author="A volunteer",
            kind=kind,
        )

    note = item("sample-note", "How our emails look", "This is a sample.", ItemKind.EDITOR_NOTE)
    story = item(
        "sample-story",
        "A story as readers see it",
        "Its summary, with a link to read the rest.",
        ItemKind.ARTICLE,
    )
    edition = Edition(
        id="sample",
        subject=f"{settings.organisation.name}: a sample",
        preheader="How our emails look",
        since=now - timedelta(days=7),
        cutoff=now,
        editor_note=note,
        sections=(Section("news", settings.edition.title_for("news"), items=(story,)),),
        archive_url=ctx.urls.archive("sample"),
    )
    return preview_copy(render_email(edition, settings), settings.delivery.base_url)
