"""The welcome email: what someone gets once on joining a list that has ``welcome`` set.

Each such list's welcome is its own stored edition, ``welcome-<list>`` (kind welcome,
its audience that one list), sent by the one :func:`~digest.lifecycle.sending.send`: its
ledger holds everyone who has had it, so confirming twice, a re-import, or leaving and
coming back never sends it twice. Nothing is sent from a web request or a staff
command: the scheduler's every-minute job (:func:`send_welcomes`) sends each welcome to
whoever is on its list and not yet in its ledger; ``digest send --edition welcome-<list>``
does the same at once.

When a list's welcome is first set up, the people already on the list are recorded as
skipped (they joined before there was a welcome); everyone who joins after gets it.
When the Markdown file changes, the edition is rendered again before the next send:
people joining from then get the new text, people who had the old one get nothing more.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from markdown_it import MarkdownIt
from sqlalchemy.engine import Connection

from digest.alert import read_body, render_message
from digest.collect.sanitize import one_line
from digest.config import ListSettings, Settings
from digest.context import App
from digest.errors import DigestError
from digest.lifecycle.checking import ensure_checked, refusal_of
from digest.lifecycle.failures import report_failure
from digest.lifecycle.sending import send
from digest.lifecycle.states import Kind, State, store_edition
from digest.models import Edition, RenderedEmail
from digest.store import audience, editions, ledger, welcomes
from digest.urls import Urls

log = logging.getLogger(__name__)
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
WHO = "scheduler"


def welcome_id(list_slug: str) -> str:
    return f"welcome-{list_slug}"


def welcome_lists(settings: Settings, slugs: list[str] | None = None) -> list[ListSettings]:
    """The lists (of ``slugs``, or all) that have a welcome."""
    return [x for x in settings.lists if x.welcome and (slugs is None or x.slug in slugs)]


def split_heading(markdown: str) -> tuple[str, str]:
    """The first heading's text (or "") and the Markdown without that heading."""
    tokens = _MARKDOWN.parse(markdown)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            start, end = token.map
            lines = markdown.splitlines(keepends=True)
            words = [t.content for t in tokens[i + 1].children or () if t.type != "image"]
            return one_line("".join(words)), "".join(lines[:start] + lines[end:])
    return "", markdown


def render_welcome(settings: Settings, urls: Urls, listed: ListSettings) -> RenderedEmail:
    """The welcome's HTML (the alert's template: the digest's header, footer and links)
    and text, from the list's Markdown file; the subject is its first heading."""
    heading, body = split_heading(read_body(settings.resolve(listed.welcome)))
    org = settings.organisation
    return render_message(
        settings,
        subject=heading or f"Welcome to {listed.name}",
        markdown=body,
        heading=f"Welcome to {listed.name}",
        reason=f"You are receiving this because you joined {listed.name} from {org.name}.",
        archive_url=urls.archive(),
        text_template="email/welcome.txt.j2",
    )


def prepare_welcomes(app: App, slugs: list[str] | None = None) -> None:
    """Set up the welcome of each list (of ``slugs``) that has one and none stored yet.
    Called before people join (a sign-up, an import), so they are not taken for people
    who were there before; a welcome that cannot be rendered is logged, never raised."""
    for listed in welcome_lists(app.settings, slugs):
        try:
            _set_up(app, listed)
        except DigestError as exc:
            log.error("welcome for list %s: %s", listed.slug, exc)


def _set_up(app: App, listed: ListSettings) -> bool:
    ident = welcome_id(listed.slug)
    with app.engine.connect() as conn:
        if editions.state_of(conn, ident) is not None:
            return False
    email = render_welcome(app.settings, app.urls, listed)
    now = app.clock()
    with app.engine.begin() as conn:
        editions.lock_row(conn, ident)
        if editions.state_of(conn, ident) is not None:  # another process was first
            return False
        audience.sync_lists(conn, app.settings.lists)
        _store(conn, app, listed, email, now, note="welcome set up")
        skipped = welcomes.record_skipped(
            conn, ident, listed.slug, reason="on the list before its welcome was set up", now=now
        )
        editions.record_note(
            conn,
            ident,
            who=WHO,
            now=now,
            note=f"{skipped} already on {listed.slug}: they do not get the welcome",
        )
    log.info("welcome %s set up (%s already on the list skipped)", ident, skipped)
    return True


def _store(
    conn: Connection,
    app: App,
    listed: ListSettings,
    email: RenderedEmail,
    now: datetime,
    note: str = "",
) -> None:
    """Store the list's welcome as rendered now (set up, or its text changed)."""
    ident = welcome_id(listed.slug)
    store_edition(
        conn,
        _record(app, ident, email),
        email,
        kind=Kind.WELCOME,
        who=WHO,
        now=now,
        list_slug=listed.slug,
        note=note,
    )


def _record(app: App, ident: str, email: RenderedEmail) -> Edition:
    now = app.clock()
    return Edition(ident, email.subject, "", now, now, None, (), app.urls.archive())


def send_welcomes(app: App, *, stop: threading.Event | None = None) -> int:
    """Every welcome to whoever joined its list since (the scheduler's every-minute job);
    how many welcomes went. One list's trouble is logged and never stops the next."""
    sent = 0
    for listed in welcome_lists(app.settings):
        try:
            sent += _send_one(app, listed, stop)
        except Exception as exc:  # recorded (and mailed to staff) by send
            log.error("welcome %s: not sent: %s", welcome_id(listed.slug), exc)
    return sent


def _send_one(app: App, listed: ListSettings, stop: threading.Event | None) -> int:
    ident = welcome_id(listed.slug)
    _set_up(app, listed)
    with app.engine.connect() as conn:
        state = State(editions.state_of(conn, ident) or State.BUILT)
        newcomers = welcomes.has_newcomers(conn, ident, listed.slug)
        left = ledger.pending(conn, ident)[0]
    # A failed welcome waits for staff (they were told) or for the next person to join.
    if not newcomers and not (left and state is not State.FAILED):
        return 0
    _refresh(app, listed)
    if _held(app, ident):
        return 0
    result = send(app, ident, who=WHO, stop=stop, notify=True)
    return sum(result.plan.new_recipients.values())


def _refresh(app: App, listed: ListSettings) -> None:
    """Render the welcome again; store it when the file (or the branding) changed."""
    ident = welcome_id(listed.slug)
    email = render_welcome(app.settings, app.urls, listed)
    now = app.clock()
    with app.engine.begin() as conn:
        stored = editions.get_edition(conn, ident)
        if stored is None or stored.email == email:
            return
        _store(conn, app, listed, email, now)
        editions.record_note(
            conn,
            ident,
            who=WHO,
            now=now,
            note="welcome text changed: people joining from now get the new one",
        )
    log.info("welcome %s: the text changed, rendered again", ident)


def _held(app: App, ident: str) -> bool:
    """A blocking check holds the welcome: reported once (failed, staff mailed), then
    left quietly until the file is fixed or staff override it with 'digest send'."""
    report = ensure_checked(app.settings, app.engine, ident, app.clock())
    if not report.blocked:
        return False
    why = refusal_of(report)
    with app.engine.connect() as conn:
        last = editions.history(conn, ident)[:1]
    if last and last[0].note == why:
        log.debug("welcome %s still held by its checks", ident)
        return True
    report_failure(app, ident, why, who=WHO, notify=True)
    with app.engine.begin() as conn:
        if editions.state_of(conn, ident) != State.FAILED:  # sent before: noted, not failed
            editions.record_note(conn, ident, who=WHO, now=app.clock(), note=why)
    return True
