"""The HTTP server for the web app: uvicorn, told which proxies (if any) name the client;
in one process, or in worker processes that each build their own app."""

from __future__ import annotations

import atexit
import logging
import os
import queue
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path
from typing import Any

import uvicorn

from digest.config import Settings
from digest.logs import LogFormat
from digest.web.pages import HideTokens


def _options(settings: Settings) -> dict[str, Any]:
    """Only a proxy in ``[web] trusted_proxies`` may say who the client is
    (``X-Forwarded-For``); with none, the address that connected is the client and the
    header is ignored, so nobody picks their own address to dodge a rate limit."""
    trusted = [str(network) for network in settings.web.trusted_proxies]
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted, "server_header": False}


def server_config(
    web: Any, settings: Settings, *, host: str, port: int, **extra: Any
) -> uvicorn.Config:
    """uvicorn's settings for ``web`` in this process."""
    logging.getLogger("uvicorn.access").addFilter(HideTokens())
    return uvicorn.Config(
        web, host=host, port=port, **_options(settings), **{"log_level": "info", **extra}
    )


class WorkerConfig(uvicorn.Config):
    """uvicorn's settings for ``digest serve --workers N``. Each worker is a new process
    (spawned, nothing inherited but this object): it opens the project, sets up the log
    format and builds the web app itself. The scheduler is not part of it: it runs in the
    parent only, which hands connections to the workers."""

    def __init__(
        self,
        settings: Settings,
        project: Path,
        *,
        log_format: LogFormat,
        debug: bool,
        host: str,
        port: int,
        workers: int,
    ) -> None:
        self.project, self.log_format, self.debug = project, log_format, debug
        super().__init__(
            f"{__name__}:WorkerConfig",  # a name to pickle; load() builds the real app
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            log_level="debug" if debug else "info",
            # A worker answers the parent's pings once it has imported the app's modules:
            # seconds on a busy machine, and a silent one is killed and replaced.
            timeout_worker_healthcheck=60,
            **_options(settings),
        )

    def load(self) -> None:
        from digest.context import open_app
        from digest.logs import configure_logging
        from digest.web.app import create_app

        ctx = open_app(self.project)
        configure_logging(self.log_format, ctx.settings.organisation.zone, debug=self.debug)
        logging.getLogger("uvicorn.access").addFilter(HideTokens())
        logs_in_background()
        atexit.register(_let_sends_finish)  # after the logs' own: it runs before them
        self.app = create_app(ctx)
        super().load()


def _let_sends_finish() -> None:
    """As a worker stops: sends started from its console record their batches in flight
    (the main process does the same for its own, see serve_command)."""
    from digest.schedule import STOP
    from digest.web.console import wait_for_background

    STOP.set()
    if left := wait_for_background(timeout=120):
        logging.getLogger(__name__).warning(
            "%d send(s) from the console still running: 'digest serve' resumes them", left
        )


def default_workers(settings: Settings) -> int:
    """SQLite: one (its writers queue whatever the processes); PostgreSQL: one a core,
    at most four."""
    if settings.database_url.startswith("sqlite"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


class _Queued(QueueHandler):
    """A record as it is, its message made now (the formatter runs in the writing thread
    and still sees the error's traceback, for the JSON lines' ``error``)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg, record.args = record.getMessage(), None
        return record


def logs_in_background() -> None:
    """The process's log lines written by a thread of their own: writing one to a pipe or
    the journal can take longer than answering the request it is about, and the event loop
    would wait for it. Lines keep their order; what is queued is written at exit."""
    root = logging.getLogger()
    if any(isinstance(h, QueueHandler) for h in root.handlers):
        return
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(lines, *root.handlers, respect_handler_level=True)
    root.handlers = [_Queued(lines)]
    listener.start()
    atexit.register(listener.stop)
