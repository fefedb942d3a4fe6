"""An import (and a print layout) pauses Python's cycle collector while it runs (a quarter
of a big import's CPU) and always turns it back on, whether the import worked or failed;
an import inside one that already paused it leaves it paused for the outer one. A send
tunes the collector and the interpreter's thread switches while it runs, and two sends at
once in one process (an alert beside the weekly send under `digest serve`) leave them as
they were before either."""

from __future__ import annotations

import gc
import sys

import pytest

from digest.collector import collector_paused, tuned_for_sending


def test_the_collector_runs_again_after_an_import_that_worked_or_failed() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner one leaves the outer one's pause alone
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a bad file")
    assert gc.isenabled()


def test_two_sends_at_once_leave_the_interpreter_as_it_was_before_either() -> None:
    threshold, switch = gc.get_threshold(), sys.getswitchinterval()
    first, second = tuned_for_sending(100_000, 0.0005), tuned_for_sending(100_000, 0.0005)
    first.__enter__()
    assert gc.get_threshold()[0] == 100_000 and sys.getswitchinterval() == 0.0005
    assert gc.get_freeze_count() > 0
    second.__enter__()
    first.__exit__(None, None, None)  # the weekly send ends while the alert goes on
    assert gc.get_threshold()[0] == 100_000 and sys.getswitchinterval() == 0.0005
    second.__exit__(None, None, None)
    assert gc.get_threshold() == threshold and sys.getswitchinterval() == switch
    assert gc.get_freeze_count() == 0


def test_a_send_that_fails_puts_the_interpreter_back() -> None:
    threshold, switch = gc.get_threshold(), sys.getswitchinterval()
    with pytest.raises(ValueError), tuned_for_sending(50_000, 0.001):
        raise ValueError("the key was refused")
    assert gc.get_threshold() == threshold and sys.getswitchinterval() == switch
