"""What every console page shares: the frame with the staff member's name and logout form,
no caching, and work that runs on after the page has answered."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import HTMLResponse

from digest.config import Settings
from digest.errors import DigestError
from digest.staff.sessions import Staff
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
    page.headers.update(CONSOLE_HEADERS)
    page.headers["Cache-Control"] = "no-store"
    return page


def missing(settings: Settings, staff: Staff) -> HTMLResponse:
    return console(settings, staff, "web/admin/missing.html.j2", title="Not found", status=404)


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
