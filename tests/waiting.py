"""The one way tests wait: for an event, with a deadline, failing with what never came."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest

POLL = 0.05


def wait_until(
    what: str,
    ready: Callable[[], bool],
    *,
    timeout: float = 30,
    proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
) -> None:
    """Poll ``ready`` until it is true; fail the test at the deadline, or at once when
    ``proc`` (the process that should make it true) has exited."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL)
