"""Shared by the commands: warnings, who is at the terminal, stopping on signals."""

from __future__ import annotations

import getpass
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import typer


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def who_am_i() -> str:
    """The person at the terminal, for the history of editions."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM: finish the batches in flight, record them, stop claiming new ones."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        warn(f"{signal.Signals(signum).name}: finishing the batches in flight, then stopping")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
