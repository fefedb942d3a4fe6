"""Python's cycle collector paused around work that makes many objects and no cycles, and
the interpreter tuned for a send's threads while any send runs in the process."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector off until the block ends, however it ends; on again only if it
    was on (so a pause inside a pause leaves it off). For work whose objects die by their
    reference counts but live long enough for the collector to walk them again and again:
    an import's chunks of rows, WeasyPrint's boxes."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


_SENDING = threading.Lock()
_sends_running = 0  # in this process
_before_sends: tuple[tuple[int, ...], float] = ((), 0.0)  # as the first of them found it


@contextmanager
def tuned_for_sending(young: int, switch_interval: float) -> Iterator[None]:
    """While a send runs: what lives on (modules, settings, the edition) frozen out of the
    collector's walks, its youngest pass only after ``young`` new objects, and a thread
    holding the interpreter lock at most ``switch_interval`` seconds while others wait.

    These are the process's, and ``digest serve`` may run an alert beside a weekly send:
    the first send in sets them, the last one out puts back what was before (a send
    restoring its own start would leave the other's settings in place for good)."""
    global _sends_running, _before_sends
    with _SENDING:
        if not _sends_running:
            gc.collect()
            gc.freeze()
            _before_sends = (gc.get_threshold(), sys.getswitchinterval())
            gc.set_threshold(young, *_before_sends[0][1:])
            sys.setswitchinterval(min(_before_sends[1], switch_interval))
        _sends_running += 1
    try:
        yield
    finally:
        with _SENDING:
            _sends_running -= 1
            if not _sends_running:
                gc.set_threshold(*_before_sends[0])
                sys.setswitchinterval(_before_sends[1])
                gc.unfreeze()
