"""Headers on every response: the strict security set, and ``Cache-Control: no-store`` on
the pages that show an address or a staff member's work (a link's token pages and the
console), so no shared cache or browser history keeps them."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders

from digest.urls import CONSOLE
from digest.web.limits import ASGIApp, Message, Receive, Scope, Send
from digest.web.pages import SECURITY_HEADERS

PRIVATE_PATHS = ("/u/", "/p/", "/c/", CONSOLE + "/")


def is_private(path: str) -> bool:
    return path == CONSOLE or path.startswith(PRIVATE_PATHS)


class StrictHeaders:
    """Adds the headers as the response starts (pure ASGI: no extra task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = is_private(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if private:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
