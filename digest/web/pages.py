"""What every page of the web app shares: the frame, the message page, the headers, limits."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict, deque
from functools import cache
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from digest.config import Settings
from digest.models import RenderedEmail
from digest.render import NAME, PREFERENCES, UNSUBSCRIBE
from digest.render.templates import html_env
from digest.urls import Urls

MAX_BODY = 1_000_000
MAX_UPLOAD = 50_000_000  # a subscriber CSV, posted to the console by staff
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# An email preview, shown inside the console's own pages.
FRAMED_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "SAMEORIGIN",
}
# Console pages that show previews in frames of their own origin.
CONSOLE_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src https: data:; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
}


@cache
def _pages() -> jinja2.Environment:
    """The HTML templates, each file read once: they ship with the code and do not change
    while it runs, and Jinja would otherwise stat every file of a page on every request."""
    return html_env().overlay(auto_reload=False)


def render(settings: Settings, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """One of the web pages, with the organisation's name and address in its frame."""
    html = _pages().get_template(template).render(org=settings.organisation, **context)
    return HTMLResponse(html, status_code=status)


def message(settings: Settings, title: str, text: str, status: int = 200) -> HTMLResponse:
    return render(settings, "web/message.html.j2", title=title, message=text, status=status)


SWEEP_ABOVE = 10_000  # distinct keys held before the stale ones are dropped (memory stays bounded)


class RateLimit:
    """At most ``count`` requests per key in ``window`` seconds (per IP, per address)."""

    def __init__(self, count: int, window: float) -> None:
        self.count, self.window = count, window
        self.seen: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()
        self.sweep_at = SWEEP_ABOVE

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            if len(self.seen) > self.sweep_at:  # forget keys last seen over a window ago
                self.seen = defaultdict(
                    deque, {k: v for k, v in self.seen.items() if v and v[-1] >= now - self.window}
                )
                self.sweep_at = max(SWEEP_ABOVE, 2 * len(self.seen))
            times = self.seen[key]
            while times and times[0] < now - self.window:
                times.popleft()
            if len(times) >= self.count:
                return False
            times.append(now)
            return True


def without_personal_links(html: str, base_url: str) -> str:
    """The view-in-browser copy of an email: no per-recipient link or name in it."""
    archive = Urls(base_url).archive()
    for placeholder, value in ((UNSUBSCRIBE, archive), (PREFERENCES, archive), (NAME, "")):
        html = html.replace(placeholder, value)
    return html


def preview_copy(email: RenderedEmail, base_url: str) -> RenderedEmail:
    """An email as staff preview it: links in place of the per-recipient placeholders."""
    return RenderedEmail(
        email.subject,
        without_personal_links(email.html, base_url),
        without_personal_links(email.text, base_url),
    )


_TOKEN_PATH = re.compile(r"^/(u|p|c)/[^/?#]+")


class HideTokens(logging.Filter):
    """uvicorn's access log without the signed tokens of /u/, /p/ and /c/ links: each one
    is a key to one person's subscription."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str):
                args[2] = _TOKEN_PATH.sub(r"/\1/<token>", args[2])
                record.args = tuple(args)
        return True
