"""What every console page shares: the frame with the staff member's name and logout form,
no caching, and work that runs on after the page has answered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi.responses import HTMLResponse

from digest.config import Settings
from digest.errors import DigestError
from digest.staff.sessions import Staff
from digest.web.pages import CONSOLE_HEADERS, render

log = logging.getLogger(__name__)


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


def in_background(name: str, work: Callable[[], object]) -> threading.Thread:
    """Start a send that outlives the request; its progress is read from the ledger."""

    def run() -> None:
        try:
            work()
        except DigestError as exc:
            log.error("%s: %s", name, exc)
        except Exception:
            log.exception("%s failed", name)

    thread = threading.Thread(target=run, name=f"digest-{name}", daemon=True)
    thread.start()
    return thread
