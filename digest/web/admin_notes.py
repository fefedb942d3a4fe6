"""Notes written in the console: the editor's note and staff notes, with a preview that
renders the note as the email will. They are collected like the notes folder's files (at
once when saved), so the next build, or Rebuild on the edition's page, takes them in."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest.collect import collect_notes
from digest.collect.notes import Note, markdown_html, note_item, staff_note_key
from digest.context import App
from digest.edition import EVENTS_SECTION
from digest.errors import DigestError
from digest.models import Edition, RenderedEmail, Section
from digest.render import render_email
from digest.render.print_body import online_only_texts
from digest.staff import audit
from digest.staff.sessions import Staff
from digest.store import notes as store
from digest.urls import CONSOLE, console_path
from digest.web.console import console, missing
from digest.web.deps import Ctx, PostedDep, StaffDep, text_field
from digest.web.pages import preview_copy

router = APIRouter(prefix=CONSOLE + "/notes")
MAX_BODY = 100_000


@router.get("", response_class=HTMLResponse)
def notes_page(ctx: Ctx, staff: StaffDep, done: str = "") -> HTMLResponse:
    with ctx.engine.connect() as conn:
        rows = store.all_notes(conn)
    return console(
        ctx.settings,
        staff,
        "web/admin/notes.html.j2",
        title="Notes",
        rows=rows,
        zone=ctx.settings.organisation.zone,
        done=done[:200],
        folder=ctx.settings.sources.notes.dir if ctx.settings.sources.notes else None,
    )


@router.get("/new", response_class=HTMLResponse)
def new_note(ctx: Ctx, staff: StaffDep) -> HTMLResponse:
    return _form(ctx, staff, None, _blank(ctx))


@router.get("/{note_id:int}", response_class=HTMLResponse)
def edit_note(ctx: Ctx, staff: StaffDep, note_id: int) -> HTMLResponse:
    with ctx.engine.connect() as conn:
        row = store.get_note(conn, note_id)
    if row is None:
        return missing(ctx.settings, staff)
    zone = ctx.settings.organisation.zone
    given = {
        "title": row.title,
        "body": row.body,
        "section": row.section,
        "pin": "on" if row.pinned else "",
        "editor_note": "on" if row.editor_note else "",
        "published": row.published.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "author": row.author,
    }
    return _form(ctx, staff, note_id, given)


@router.post("", response_class=HTMLResponse)
async def post_new(ctx: Ctx, posted: PostedDep) -> Response:
    return await run_in_threadpool(_handle, ctx, posted.staff, posted.form, None)


@router.post("/{note_id:int}", response_class=HTMLResponse)
async def post_note(ctx: Ctx, posted: PostedDep, note_id: int) -> Response:
    return await run_in_threadpool(_handle, ctx, posted.staff, posted.form, note_id)


def _handle(ctx: App, staff: Staff, form: FormData, note_id: int | None) -> Response:
    action = text_field(form, "action")
    given = {name: _field(form, name) for name in _blank(ctx)}
    if action == "delete" and note_id is not None:
        return _delete(ctx, staff, note_id)
    try:
        note = _note(ctx, given)
        if action == "preview":
            return _form(ctx, staff, note_id, given, preview=_preview(ctx, note))
        if action != "save":
            raise DigestError("choose Preview, Save or Delete")
        note_id = _save(ctx, staff, note_id, note)
    except DigestError as exc:
        return _form(ctx, staff, note_id, given, problem=str(exc), status=400)
    return RedirectResponse(console_path(f"notes?done=Saved “{note.title[:80]}”."), 303)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _blank(ctx: App) -> dict[str, str]:
    now = ctx.clock().astimezone(ctx.settings.organisation.zone)
    return {
        "title": "",
        "body": "",
        "section": _sections(ctx)[0],
        "pin": "",
        "editor_note": "",
        "published": now.strftime("%Y-%m-%dT%H:%M"),
        "author": "",
    }


def _sections(ctx: App) -> list[str]:
    return [s for s in ctx.settings.edition.sections if s != EVENTS_SECTION] or ["news"]


def _note(ctx: App, given: dict[str, str]) -> Note:
    """The form as a note; DigestError naming the field that is wrong."""
    title = " ".join(given["title"].split())
    if not title:
        raise DigestError("the title is empty: write one")
    if len(given["body"].encode()) > MAX_BODY:
        raise DigestError("the note is over 100 KB: shorten it")
    if given["section"] not in _sections(ctx):
        raise DigestError(f"section {given['section']!r} is not one of edition.sections")
    published = _published(ctx, given["published"])
    return Note(
        title=title[:300],
        body=given["body"].replace("\r\n", "\n"),
        section=given["section"],
        pinned=given["pin"] == "on",
        editor_note=given["editor_note"] == "on",
        published=published,
        author=" ".join(given["author"].split())[:200],
    )


def _published(ctx: App, text: str) -> datetime:
    """The publish date (organisation's time); in the past is fine, for a note."""
    if not text:
        return ctx.clock()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise DigestError(
            f"publish date {text!r} is not a date and time: write 2026-12-03T09:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=ctx.settings.organisation.zone)


def _save(ctx: App, staff: Staff, note_id: int | None, note: Note) -> int:
    now = ctx.clock()
    values = {
        "title": note.title,
        "body": note.body,
        "section": note.section,
        "pinned": note.pinned,
        "editor_note": note.editor_note,
        "published": note.published,
        "author": note.author,
    }
    with ctx.engine.begin() as conn:
        if note_id is None:
            note_id = store.add_note(conn, who=staff.email, now=now, **values)
        elif not store.update_note(conn, note_id, now=now, **values):
            raise DigestError("that note is gone (someone deleted it): write it again")
        _audited(conn, staff, "note saved", note_id, note.title, now)
    collect_notes(ctx.settings, ctx.engine, now)
    return note_id


def _delete(ctx: App, staff: Staff, note_id: int) -> Response:
    now = ctx.clock()
    with ctx.engine.begin() as conn:
        row = store.get_note(conn, note_id)
        if row is None:
            return missing(ctx.settings, staff)
        store.delete_note(conn, note_id)
        _audited(conn, staff, "note deleted", note_id, row.title, now)
    collect_notes(ctx.settings, ctx.engine, now)
    return RedirectResponse(console_path(f"notes?done=Deleted “{row.title[:80]}”."), 303)


def _audited(
    conn: Connection, staff: Staff, action: str, note_id: int, title: str, now: datetime
) -> None:
    audit.record(conn, who=staff.email, action=action, target=str(note_id), detail=title, now=now)


def _preview(ctx: App, note: Note) -> RenderedEmail:
    """The note alone, rendered through the digest's own templates."""
    settings, now = ctx.settings, ctx.clock()
    item = note_item(staff_note_key(0), note, now=now, summary_chars=settings.collect.summary_chars)
    sections = (
        ()
        if note.editor_note
        else (Section(item.section, settings.edition.title_for(item.section), items=(item,)),)
    )
    edition = Edition(
        id="preview",
        subject=note.title,
        preheader=item.summary,
        since=now,
        cutoff=now,
        editor_note=item if note.editor_note else None,
        sections=sections,
        archive_url=ctx.urls.archive("preview"),
    )
    return preview_copy(render_email(edition, settings), settings.delivery.base_url)


def _form(
    ctx: App,
    staff: Staff,
    note_id: int | None,
    given: dict[str, str],
    *,
    preview: RenderedEmail | None = None,
    problem: str = "",
    status: int = 200,
) -> HTMLResponse:
    return console(
        ctx.settings,
        staff,
        "web/admin/note.html.j2",
        title="Edit note" if note_id else "Write a note",
        note_id=note_id,
        given=given,
        sections=[(s, ctx.settings.edition.title_for(s)) for s in _sections(ctx)],
        zone=ctx.settings.organisation.timezone,
        email=preview,
        online_only=online_only_texts(markdown_html(given.get("body", ""))) if preview else [],
        problem=problem,
        status=status,
    )
