"""One candidate of the page-cap search measured on the other core, in a forked child.

The search needs both sides of its boundary laid out (the fewest left out that fits, and
one fewer, too long), each a third of a second or more of WeasyPrint, one after the other.
The search lays out its next candidate here while a child laid out the one it would try
after that (``print_search``): on a 2-core machine the two take the wall time of one.

A child only measures: it lays its candidate out as a probe and sends back the two numbers
the search reads (pages, and pages used), then leaves by ``os._exit`` (no atexit handlers,
no inherited buffers flushed a second time, no logging, the database never touched). A
child that fails, dies or says nothing is no answer: the search lays that candidate out
itself if it still needs it. What is printed is always laid out in this process.

Forking is only safe with one thread: a child of a threaded process (``digest serve``'s
scheduler and web server) could inherit a lock another thread held and wait for it for
ever. There, and with one CPU, ``start`` says no and the search lays out one at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable

ANSWER = struct.Struct("<qd")  # pages, pages used
WAIT_S = 60.0  # a child still silent by then is killed (a layout takes well under a second)


def usable() -> bool:
    """Whether a child may be forked here, and would run beside this process."""
    return hasattr(os, "fork") and _threads() == 1 and _cpus() > 1


def _threads() -> int:
    """This process's threads: Python's, and those a C library or ``_thread`` started."""
    return max(threading.active_count(), _os_threads())


def _os_threads() -> int:
    """This process's threads, those a C library or ``_thread`` started too (Linux; else 1)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # those this process may run on
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Ahead:
    """A candidate being measured in a child; ``result`` reaps it whatever happened."""

    def __init__(self, pid: int, answer: int) -> None:
        self.pid = pid
        self.answer = answer  # the pipe's reading end
        self.done = False

    def result(self) -> tuple[int, float] | None:
        """The child's (pages, used), or None if it failed, died or took too long."""
        got = b""
        try:
            deadline = time.monotonic() + WAIT_S
            while len(got) < ANSWER.size:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.answer], [], [], left)[0]:
                    break
                chunk = os.read(self.answer, ANSWER.size - len(got))
                if not chunk:  # EOF: the child left without a whole answer
                    break
                got += chunk
        finally:
            status = self._reap(kill=len(got) < ANSWER.size)
        if len(got) < ANSWER.size or status != 0:
            return None
        pages, used = ANSWER.unpack(got)
        return pages, used

    def cancel(self) -> None:
        """The answer is not wanted (this process is failing): the child killed, reaped."""
        self._reap(kill=True)

    def _reap(self, *, kill: bool) -> int:
        if self.done:
            return -1
        self.done = True
        os.close(self.answer)
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def start(measure: Callable[[], tuple[int, float]]) -> Ahead | None:
    """``measure()`` run in a forked child; None when forking is not safe or useful here."""
    if not usable():
        return None
    for stream in (sys.stdout, sys.stderr):  # or the child's inherited copy is written too
        with contextlib.suppress(Exception):
            stream.flush()
    answer, tell = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(answer)
        os.close(tell)
        return None
    if pid == 0:  # the child
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
            logging.disable(logging.CRITICAL)  # the parent logs; no handler runs twice
            os.close(answer)
            pages, used = measure()
            os.write(tell, ANSWER.pack(pages, used))  # 16 bytes: one write, whole
            code = 0
        finally:
            os._exit(code)
    os.close(tell)
    return Ahead(pid, answer)
