"""Headers on every response: the strict security set, and ``Cache-Control: no-store`` on
the pages that show an address or a staff member's work (a link's token pages and the
console), so no shared cache or browser history keeps them."""

from __future__ import annotations

from digest.urls import CONSOLE
from digest.web.limits import ASGIApp, Message, Receive, Scope, Send
from digest.web.pages import SECURITY_HEADERS

PRIVATE_PATHS = ("/u/", "/p/", "/c/", CONSOLE + "/")


def is_private(path: str) -> bool:
    return path == CONSOLE or path.startswith(PRIVATE_PATHS)


_STRICT = [
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in SECURITY_HEADERS.items()
]
_NO_STORE = (b"cache-control", b"no-store")


class StrictHeaders:
    """Adds the headers as the response starts (pure ASGI: no extra task per request): each
    security header the page did not set itself, and on a private page ``Cache-Control:
    no-store`` in place of any other."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = is_private(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                named = {name.lower() for name, _ in headers}
                headers += [pair for pair in _STRICT if pair[0] not in named]
                if private:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
