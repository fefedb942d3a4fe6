"""Failures are seen: the edition records ``failed`` with the reason, the log line names
it, and the preview list (or, without one, every staff account) gets a short email
saying what failed and what to do. The console's dashboard lists them."""

from __future__ import annotations

import html
import logging

from digest.context import App
from digest.dispatch.copies import send_copies
from digest.lifecycle.states import MOVES, State, locked_state, transition
from digest.models import Recipient, RenderedEmail
from digest.staff.users import list_users
from digest.store import audience
from digest.urls import edition_path

log = logging.getLogger(__name__)


def reason_of(exc: BaseException) -> str:
    """An exception as a failure's reason: its message, or its name when it has none."""
    return str(exc) or type(exc).__name__


def report_failure(app: App, edition_id: str, reason: str, *, who: str, notify: bool) -> None:
    """Record the failure (when the table allows it from where the edition is), log it,
    and, for sends nobody is watching, mail the notice."""
    now = app.clock()
    with app.engine.begin() as conn:
        current = locked_state(conn, edition_id)
        if State.FAILED in MOVES[current]:
            transition(conn, edition_id, State.FAILED, who=who, now=now, note=reason)
    log.error("edition %s failed: %s", edition_id, reason)
    if notify:
        send_notice(app, edition_id, reason)


def send_notice(app: App, edition_id: str, reason: str) -> int:
    """The failure notice to the preview list, or to the staff when there is none. How many
    got it (0 when the notice itself could not go: that is logged, never raised)."""
    slug, people = notice_recipients(app)
    try:
        return send_copies(
            app,
            notice_email(app, edition_id, reason),
            app.transport(),
            people,
            list_slug=slug,
            mark="",
            now=app.clock(),
            label=f"notice-{edition_id}",
            variant="text",
        )
    except Exception as exc:  # the transport that failed the send may fail this too
        log.error("edition %s: the failure notice could not be sent either: %s", edition_id, exc)
        return 0


def notice_recipients(app: App) -> tuple[str, list[Recipient]]:
    preview = app.settings.edition.preview_list
    if any(x.slug == preview for x in app.settings.lists):
        with app.engine.begin() as conn:
            audience.sync_lists(conn, app.settings.lists)
            return preview, list(audience.recipients_for(conn, [preview]))
    return "", [Recipient(0, row.email, "") for row in list_users(app.engine)]


def notice_email(app: App, edition_id: str, reason: str) -> RenderedEmail:
    """A short, plain message: what failed, why, where to look, what to run."""
    org = app.settings.organisation
    page = app.urls.absolute(edition_path(edition_id))
    lines = [
        f"The send of {edition_id} did not finish.",
        "",
        f"Why: {reason}",
        "",
        f"See it in the console: {page}",
        f"Or on the server: digest status {edition_id}",
        f"When the cause is fixed, send it again (nobody gets it twice): "
        f"digest send --edition {edition_id}",
        "",
        f"-- digest, for {org.name}",
    ]
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
    page_html = f'<!doctype html><html lang="{org.language}"><body>{body}</body></html>'
    return RenderedEmail(f"[digest] {edition_id} failed to send", page_html, text)
