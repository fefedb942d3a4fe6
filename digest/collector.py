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
_sends: list[tuple[tuple[int, ...], float]] = []  # one entry a send running: what was before


@contextmanager
def tuned_for_sending(young: int, switch_interval: float) -> Iterator[None]:
    """While a send runs: what lives on (modules, settings, the edition) frozen out of the
    collector's walks, its youngest pass only after ``young`` new objects, and a thread
    holding the interpreter lock at most ``switch_interval`` seconds while others wait.

    These are the process's, and ``digest serve`` may run an alert beside a weekly send:
    the first send in sets them, the last one out puts back what was before it (a send
    restoring its own start would leave the other's settings in place for good)."""
    with _SENDING:
        before: tuple[tuple[int, ...], float]
        if not _sends:
            gc.collect()
            gc.freeze()
            before = (gc.get_threshold(), sys.getswitchinterval())
            gc.set_threshold(young, *before[0][1:])
            sys.setswitchinterval(min(before[1], switch_interval))
        else:
            before = _sends[0]
        _sends.append(before)
    try:
        yield
    finally:
        with _SENDING:
            _sends.pop()
            if not _sends:
                gc.set_threshold(*before[0])
                sys.setswitchinterval(before[1])
                gc.unfreeze()
