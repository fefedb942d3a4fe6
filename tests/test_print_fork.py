"""The page-cap search measures a second candidate in a forked child, on the other core,
and prints what the one-at-a-time search prints: the same items left out, the same
paragraphs of the next story, the same PDF bytes, after the very same decisions. A child
that dies or hangs costs time only; a process with a second thread never forks.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from digest.render import print as printing
from digest.render import print_fork, print_search
from tests.golden_edition import golden_settings
from tests.test_print_probe import layout_of

THREADS = print_fork._threads


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Forks allowed on any test machine (pytest-xdist's worker has an I/O thread of its
    own, an earlier test may have left one running, and a CI runner may have one CPU);
    the children started, counted."""
    monkeypatch.setattr(print_fork, "_threads", lambda: 1)
    monkeypatch.setattr(print_fork, "_cpus", lambda: 2)
    started: list[int] = []
    start = print_fork.start

    def counted(measure: Any) -> Any:
        ahead = start(measure)
        if ahead is not None:
            started.append(ahead.pid)
        return ahead

    monkeypatch.setattr(print_fork, "start", counted)
    return started


def built(monkeypatch: pytest.MonkeyPatch, edition: str, paper: str, cap: int) -> Any:
    """The print edition, its searches' decisions (every candidate measured, in order, with
    its pages used) and how many layouts this process made."""
    layout, _ = layout_of(edition, paper, cap)
    searches: list[list[tuple[int, float]]] = []
    real_search, real_render = print_search.search, printing._Layout.render
    renders: list[int] = []

    def search(*args: Any) -> Any:
        found = real_search(*args)
        searches.append(list(args[2].measured.items()))
        return found

    def render(self: printing._Layout, *args: Any, **kwargs: Any) -> Any:
        renders.append(os.getpid())
        return real_render(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(printing, "search", search)
        m.setattr(printing._Layout, "render", render)
        printed = printing.render_print(layout.edition, golden_settings(), layout.profile)
    here = sum(pid == os.getpid() for pid in renders)
    return (printed.left_out, printed.pages, printed.pdf), searches, here


def one_at_a_time(monkeypatch: pytest.MonkeyPatch, *case: Any) -> Any:
    with monkeypatch.context() as m:
        m.setattr(print_fork, "usable", lambda: False)
        return built(monkeypatch, *case)


@pytest.mark.parametrize(
    ("edition", "paper", "cap", "layouts"),  # one at a time, and here with children: how many
    [
        ("notes-and-events", "letter", 3, (2, 1, 1)),  # the first guess fits, one fewer not
        ("fewer-notes", "a4", 4, (2, 2, 1)),  # the first guess one too few: the child's wasted
        ("short", "a4", 3, (5, 4, 2)),  # one left out fits, none does not (n - 1 == 0)
        ("stories", "a4", 4, (5, 3, 2)),  # then the most paragraphs of the next story
        ("short", "letter", 10, (1, 1, 0)),  # everything fits: one layout, no child
    ],
)
def test_the_forked_search_prints_what_the_one_at_a_time_search_prints(
    monkeypatch: pytest.MonkeyPatch,
    forking: list[int],
    edition: str,
    paper: str,
    cap: int,
    layouts: tuple[int, int, int],
) -> None:
    printed, searches, alone = one_at_a_time(monkeypatch, edition, paper, cap)
    got, got_searches, here = built(monkeypatch, edition, paper, cap)
    assert got == printed  # n left out, pages, PDF bytes
    assert got_searches == searches  # the same candidates, in the same order, measured alike
    assert (alone, here, len(forking)) == layouts


def dies(*args: Any) -> Any:
    os._exit(3)


def hangs(*args: Any) -> Any:
    time.sleep(30)


@pytest.mark.parametrize("child", [dies, hangs])
def test_a_child_that_dies_or_hangs_only_costs_a_layout_here(
    monkeypatch: pytest.MonkeyPatch, forking: list[int], child: Any
) -> None:
    case = ("fewer-notes", "a4", 4)
    printed, searches, layouts = one_at_a_time(monkeypatch, *case)
    monkeypatch.setattr(print_search, "_probe", child)
    monkeypatch.setattr(print_fork, "WAIT_S", 0.5)
    got, got_searches, here = built(monkeypatch, *case)
    assert forking  # children were started, and gave nothing
    assert (got, got_searches, here) == (printed, searches, layouts)
    for pid in forking:  # every one reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_process_with_a_second_thread_lays_out_without_forking(
    monkeypatch: pytest.MonkeyPatch, forking: list[int]
) -> None:
    case = ("notes-and-events", "letter", 3)
    printed, searches, layouts = one_at_a_time(monkeypatch, *case)

    def no_fork() -> int:
        raise AssertionError("forked beside a running thread")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(print_fork, "_threads", THREADS)  # counted as they are, but
    monkeypatch.setattr(print_fork, "_os_threads", lambda: 1)  # not pytest-xdist's own
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        got = built(monkeypatch, *case)
    finally:
        stop.set()
        thread.join()
    assert got == (printed, searches, layouts)
    assert not forking


def test_threads_only_a_c_library_started_count_too(monkeypatch: pytest.MonkeyPatch) -> None:
    python_threads = SimpleNamespace(active_count=lambda: 1)  # none left by earlier tests
    monkeypatch.setattr(print_fork, "threading", python_threads)
    monkeypatch.setattr(print_fork, "_cpus", lambda: 2)
    monkeypatch.setattr(print_fork, "_os_threads", lambda: 1)
    assert print_fork.usable()
    python_threads.active_count = lambda: 2
    assert not print_fork.usable()
    python_threads.active_count = lambda: 1
    monkeypatch.setattr(print_fork, "_os_threads", lambda: 2)
    assert not print_fork.usable()
    monkeypatch.setattr(print_fork, "_os_threads", lambda: 1)
    monkeypatch.setattr(print_fork, "_cpus", lambda: 1)
    assert not print_fork.usable()  # a child would only take turns with this process


def test_a_child_answers_through_the_pipe_and_leaves_without_the_teardown(
    monkeypatch: pytest.MonkeyPatch, forking: list[int], tmp_path: Any
) -> None:
    out = (tmp_path / "out.txt").open("w", encoding="utf-8")
    out.write("written once")  # still in this process's buffer at the fork

    def measure() -> tuple[int, float]:
        out.write(" and by the child")  # never flushed: the child leaves by os._exit
        quiet = not logging.getLogger("digest").isEnabledFor(logging.CRITICAL)
        deaf = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        return 7, 6.0 + quiet * 0.5 + deaf * 0.25

    ahead = print_fork.start(measure)
    assert ahead is not None
    assert ahead.result() == (7, 6.75)  # logging off, Ctrl-C left to the parent
    out.close()
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "written once"
    assert logging.getLogger("digest").isEnabledFor(logging.CRITICAL)  # here, still on


def test_a_child_whose_measure_raises_is_no_answer(forking: list[int]) -> None:
    def measure() -> tuple[int, float]:
        raise ValueError("a layout failed")

    ahead = print_fork.start(measure)
    assert ahead is not None and ahead.result() is None


def test_a_failing_layout_here_kills_and_reaps_the_child(
    monkeypatch: pytest.MonkeyPatch, forking: list[int]
) -> None:
    layout, _ = layout_of("notes-and-events", "letter", 3)
    monkeypatch.setattr(print_search, "_probe", hangs)
    real = printing._Layout.render

    def render(self: printing._Layout, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() == parent:
            raise RuntimeError("out of memory")
        return real(self, *args, **kwargs)

    parent = os.getpid()
    monkeypatch.setattr(printing._Layout, "render", render)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="out of memory"):
        printing.render_print(layout.edition, golden_settings(), layout.profile)
    assert time.monotonic() - started < 10  # not the child's 30 s
    assert forking
    with pytest.raises(ChildProcessError):
        os.waitpid(forking[0], os.WNOHANG)


def test_probing_ahead_keeps_a_fake_searchs_decisions() -> None:
    """Over a fake layout (no WeasyPrint): good and poor models, every decision the same."""
    for boundary, off, slope in [(7, 0, 1.0), (90, -60, 1.0), (90, 25, 1.0), (90, 10, 4.0)]:
        runs = []
        for ahead in (None, _in_process):
            seen: list[int] = []

            def lay_out(n: int, printable: bool, seen: list[int] = seen) -> int:
                seen.append(n)
                return n

            def measure(n: int, boundary: int = boundary) -> tuple[int, float]:
                used = 5.5 + (boundary - n) / 3
                return -int(-used // 1), used

            estimate = print_search.Estimate(
                lambda n, b=boundary, o=off, s=slope: 5.5 + (b + o - n) * s / 3, 0.0, 1.0
            )
            found = print_search.search(lay_out, measure, estimate, 5, (-1, 201, None), ahead)
            assert found is not None
            runs.append((found.fit, list(estimate.measured.items())))
        assert runs[0] == runs[1]


class _Done:
    def __init__(self, answer: tuple[int, float]) -> None:
        self.answer = answer

    def result(self) -> tuple[int, float]:
        return self.answer

    def cancel(self) -> None:
        pass


def _in_process(measure: Any) -> _Done:
    """A measurement 'elsewhere' made at once, here: the search's bookkeeping alone."""
    return _Done(measure())
