"""An import (and a print layout) pauses Python's cycle collector while it runs (a quarter
of a big import's CPU) and always turns it back on, whether the import worked or failed;
an import inside one that already paused it leaves it paused for the outer one."""

from __future__ import annotations

import gc

import pytest

from digest.collector import collector_paused


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
