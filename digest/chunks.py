"""Long streams in pieces: memory stays flat, and a statement never outgrows its limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` as lists of ``size`` (the last one shorter), read lazily."""
    stream = iter(items)
    while chunk := list(islice(stream, size)):
        yield chunk
