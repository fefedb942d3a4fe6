"""A Ctrl-C while a send's worker processes are still importing: the parent handles it
(the send stops, the workers are dismissed); the workers leave without a word, never
with a KeyboardInterrupt traceback each."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from digest.config import Secrets
from digest.dispatch.processes import WorkerPool, WorkerSpec
from tests.conftest import NOW
from tests.waiting import wait_until


def _importing(pid: int) -> bool:
    """Past the exec: the spawned interpreter runs (its command line is Python's), not
    yet waiting on its pipe."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _waiting_on_its_pipe(pid: int) -> bool:
    try:
        return "pipe_read" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def test_a_ctrl_c_while_the_workers_import_ends_them_without_a_traceback(
    make_project, capfd
) -> None:
    app = make_project().app(NOW, Secrets(secret_key="interrupt-test-key-0123456789"))
    spec = WorkerSpec(app.settings, app.secrets, "2026-W48", app.keys, NOW)
    pool = WorkerPool(spec, 2).__enter__()
    try:
        pids = [w.pid for w in pool.workers if w.pid is not None]
        wait_until("the workers' interpreters", lambda: all(_importing(p) for p in pids))
        time.sleep(0.05)  # in their imports (digest's take a few tenths of a second)
        assert not any(_waiting_on_its_pipe(p) for p in pids)
        for pid in pids:
            os.kill(pid, signal.SIGINT)  # what a Ctrl-C sends the whole process group
        # They carry on getting ready, then wait for their work like any other worker.
        wait_until("the workers ready", lambda: all(_waiting_on_its_pipe(p) for p in pids))
    finally:
        pool.close()  # dismissed: their pipes closed
    assert [w.exitcode for w in pool.workers] == [0, 0]
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err, err
