"""What every console page shares: the frame with the staff member's name and logout form,
no caching, and sends that run on after the page has answered."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.config import Settings
from digest.context import App
from digest.lifecycle.sending import begin_send, send
from digest.schedule import STOP
from digest.staff.sessions import Staff
from digest.urls import edition_path
from digest.web.pages import CONSOLE_HEADERS, render

log = logging.getLogger(__name__)
_RUNNING: set[threading.Thread] = set()
_RUNNING_LOCK = threading.Lock()


def console(
    settings: Settings,
    staff: Staff,
    template: str,
    *,
    title: str,
    status: int = 200,
    refresh: int | None = None,
    **context: Any,
) -> HTMLResponse:
    page = render(
        settings,
        template,
        status=status,
        title=title,
        staff=staff,
        csrf=staff.csrf,
        refresh=refresh,
        **context,
    )
    page.headers.update(CONSOLE_HEADERS)  # no-store comes from web.headers, as on all /admin
    return page


def missing(settings: Settings, staff: Staff) -> HTMLResponse:
    return console(settings, staff, "web/admin/missing.html.j2", title="Not found", status=404)


def refused(settings: Settings, staff: Staff, edition_id: str, why: str) -> HTMLResponse:
    return console(
        settings,
        staff,
        "web/admin/refused.html.j2",
        title="Not done",
        why=why,
        back=edition_path(edition_id),
        status=409,
    )


def start_send(app: App, staff: Staff, edition_id: str) -> Response:
    """Record ``sending`` now (the next page shows it), deliver in the background through
    the one send; a failure is recorded, mailed and shown on the dashboard."""
    begin_send(app, edition_id, who=staff.email)
    in_background(
        f"send-{edition_id}",
        lambda: send(app, edition_id, who=staff.email, stop=STOP, notify=True),
    )
    return RedirectResponse(edition_path(edition_id), 303)


def in_background(name: str, work: Callable[[], object]) -> threading.Thread:
    """Start a send that outlives the request; its progress is read from the ledger."""

    def run() -> None:
        try:
            work()
        except Exception as exc:  # recorded by the send itself; the log says which
            log.error("%s: %s", name, exc)
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(threading.current_thread())

    thread = threading.Thread(target=run, name=f"digest-{name}", daemon=True)
    with _RUNNING_LOCK:
        _RUNNING.add(thread)
    thread.start()
    return thread


def wait_for_background(timeout: float) -> int:
    """At shutdown (after the stop event is set): let sends started from the console record
    their batches in flight. The number still running when time is up."""
    deadline = time.monotonic() + timeout
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(t.is_alive() for t in running)
