"""Python's cycle collector paused around work that makes many objects and no cycles."""

from __future__ import annotations

import gc
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
