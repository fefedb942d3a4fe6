"""The web app served by uvicorn on loopback in a thread, as `digest serve` serves it
(the same `server_config`: proxy headers, token-free access log)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from digest.context import App
from digest.web.app import create_app
from digest.web.server import server_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """``with Served(app) as site:`` gives ``site.url`` until the block ends."""

    def __init__(self, ctx: App, port: int | None = None) -> None:
        self.ctx = ctx
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = create_app(ctx)
        config = server_config(
            self.web, ctx.settings, host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
