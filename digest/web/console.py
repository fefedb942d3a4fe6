"""What every console page shares: the frame with the staff member's name and logout form,
no caching, and work that runs on after the page has answered."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine

from digest.alert import is_alert
from digest.config import Secrets, Settings
from digest.errors import DigestError
from digest.schedule import STOP
from digest.staff.sessions import Staff
from digest.web.auth import CONSOLE
from digest.web.pages import CONSOLE_HEADERS, render
from digest.weekly import send_alert, send_now

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
    page.headers.update(CONSOLE_HEADERS)
    page.headers["Cache-Control"] = "no-store"
    return page


def missing(settings: Settings, staff: Staff) -> HTMLResponse:
    return console(settings, staff, "web/admin/missing.html.j2", title="Not found", status=404)


def start_send(
    settings: Settings,
    engine: Engine,
    secrets: Secrets,
    staff: Staff,
    edition_id: str,
    now: datetime,
    list_slug: str | None = None,
) -> Response:
    """The send in the background (an alert to its list or every alerts list, an edition to
    the digest and print lists); the edition's page then shows its progress."""
    if is_alert(edition_id):
        work = partial(send_alert, settings, engine, secrets, edition_id, list_slug)
    else:
        work = partial(send_now, settings, engine, secrets, edition_id)
    in_background(f"send-{edition_id}", partial(work, who=staff.email, now=now, stop=STOP))
    return RedirectResponse(f"{CONSOLE}/editions/{edition_id}", 303)


def in_background(name: str, work: Callable[[], object]) -> threading.Thread:
    """Start a send that outlives the request; its progress is read from the ledger."""

    def run() -> None:
        try:
            work()
        except DigestError as exc:
            log.error("%s: %s", name, exc)
        except Exception:
            log.exception("%s failed", name)
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
