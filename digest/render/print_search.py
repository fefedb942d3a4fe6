"""How many items to leave out of a print edition for it to fit its page cap, in few layouts.

Each layout takes WeasyPrint a third of a second or more, and the answer is a boundary: the
fewest left out (in ``drop_order``) with which the edition fits, and then, for the first
story that did not come back, the most whole paragraphs that still fit. Every decision is
measured from a laid-out document; a model only picks which layout to try next.

The model (``Estimate``) counts characters: what is kept, what is always printed, and the
"Not printed here" box, which grows by a line or so per headline it lists; its constants
were fitted to laid-out editions of 4 to 200 items on US Letter and A4 (about a quarter of a
page out, at worst two thirds). Each layout measured (its pages, the last one's fill) then
corrects it: between two measured layouts by their errors interpolated, outside them by the
nearest one's. With a good guess the search lays out the boundary's two sides and stops;
after three probes that moved the same end it steps faster (doubling, or the midpoint when
both ends are known), so a poor guess cannot stall it.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

FIXED_PAGES = 0.2  # of pages no character accounts for
PAGE_CHARS = 2625  # characters of body text a page holds, about (12 pt serif, US Letter)
LEFT_OUT_CHARS = 800  # the "Not printed here" box without its headlines
LEFT_OUT_TITLE = 3  # a listed headline takes about this many times its characters' room


@dataclass(slots=True)
class Estimate:
    """Pages taken with ``n`` left out: ``base_chars(n)`` characters' worth, corrected by
    the layouts measured so far (``measured``: n to pages used, the last one's fill counted)."""

    base_chars: Callable[[int], float]
    fixed_pages: float = FIXED_PAGES
    pages_per_char: float = 1 / PAGE_CHARS
    measured: dict[int, float] = field(default_factory=dict)

    def model(self, n: int) -> float:
        return self.fixed_pages + self.base_chars(n) * self.pages_per_char

    def pages(self, n: int) -> float:
        if not self.measured:
            return self.model(n)
        known = sorted(self.measured)
        at = bisect.bisect_left(known, n)
        if at < len(known) and known[at] == n:
            return self.measured[n]
        if 0 < at < len(known):
            a, b = known[at - 1], known[at]
            share = (n - a) / (b - a)
            error = (1 - share) * self._error(a) + share * self._error(b)
        else:
            error = self._error(known[min(at, len(known) - 1)])
        return self.model(n) + error

    def _error(self, n: int) -> float:
        return self.measured[n] - self.model(n)

    def boundary(self, lo: int, hi: int, cap: int) -> int:
        """The fewest in ``(lo, hi)`` predicted to fit ``cap`` pages (else ``hi - 1``)."""
        for n in range(lo + 1, hi):
            if self.pages(n) <= cap:
                return n
        return hi - 1


@dataclass(slots=True)
class Found:
    """The boundary: the fewest left out that fits, and its layout."""

    fit: int
    layout: Any


@dataclass(slots=True)
class _Bracket:
    """Where the search stands: ``lo`` too long, ``hi`` fits (with ``best``, its layout),
    and how many probes in a row moved the same end (``same``; ``last``: the last fitted)."""

    lo: int
    hi: int
    best: Any
    same: int = 0
    last: bool | None = None

    def next_probe(self, estimate: Estimate, cap: int) -> int | None:
        """The candidate to lay out next, or None when the boundary is found."""
        lo, hi = self.lo, self.hi
        if hi - lo <= 1:
            return None
        probe = estimate.boundary(lo, hi, cap)
        if self.same >= 2:  # the last three probes moved the same end: step faster
            if lo in estimate.measured and self.best is not None:  # both ends known
                probe = (lo + hi) // 2
            elif self.last:
                probe = min(probe, hi - 2**self.same)
            else:
                probe = max(probe, lo + 2**self.same)
        return min(hi - 1, max(lo + 1, probe))

    def record(self, probe: int, fits: bool, laid: Any) -> None:
        if fits:
            self.hi, self.best = probe, laid
        else:
            self.lo = probe
        self.same = self.same + 1 if fits == self.last else 0
        self.last = fits


@dataclass(frozen=True, slots=True)
class _MeasuredElsewhere:
    """A candidate that fits, measured by another process: laid out here if it is the answer."""

    n: int


class Pending(Protocol):
    """A measurement running in another process (``print_fork.Ahead``)."""

    def result(self) -> tuple[int, float] | None: ...  # None: it failed
    def cancel(self) -> None: ...


Ahead = Callable[[Callable[[], tuple[int, float]]], Pending | None]


def search(
    lay_out: Callable[[int, bool], Any],
    measure: Callable[[Any], tuple[int, float]],
    estimate: Estimate,
    cap: int,
    bracket: tuple[int, int, Any],
    ahead: Ahead | None = None,
) -> Found | None:
    """The fewest ``n`` in the ``bracket`` with ``lay_out(n)`` in at most ``cap`` pages,
    assuming more left out never takes more pages; None when none does.

    ``bracket`` is ``(lo, hi, layout)``: ``lo`` known too long (or one under the range),
    ``hi`` known to fit with that layout (or one over the range, layout None). ``measure``
    reads a layout's pages and pages used (whole pages before the last, and its fill).
    ``lay_out(n, printable)`` is told whether ``n`` is predicted to fit: one predicted too
    long may be laid out as a probe, not to be printed (the caller lays the answer out again
    when its layout is one).

    With ``ahead`` (``print_fork.start``: a measurement started in another process, or None
    where it cannot be), a second candidate is measured beside each one laid out here: the
    one the search tries next if this one measures as predicted. The search makes the very
    decisions it makes without (a measurement is only read when the search comes to its
    candidate), and the answer, if it was measured elsewhere, is laid out here: beside the
    next candidate when that one is predicted too long, else at the end.
    """
    run = _Search(lay_out, measure, estimate, cap, _Bracket(*bracket), ahead)
    while (probe := run.at.next_probe(estimate, cap)) is not None:
        if probe not in run.known:
            run.lay_out_round(probe)
        pages, used, laid = run.known.pop(probe)
        estimate.measured[probe] = used
        run.at.record(probe, pages <= cap, laid)
    best = run.at.best
    if isinstance(best, _MeasuredElsewhere):
        best = lay_out(best.n, True)
    return None if best is None else Found(run.at.hi, best)


@dataclass(slots=True)
class _Search:
    lay_out: Callable[[int, bool], Any]
    measure: Callable[[Any], tuple[int, float]]
    estimate: Estimate
    cap: int
    at: _Bracket
    ahead: Ahead | None
    # Candidates laid out or measured ahead of the search's coming to them: pages, used,
    # and the layout (or _MeasuredElsewhere).
    known: dict[int, tuple[int, float, Any]] = field(default_factory=dict)

    def lay_out_round(self, probe: int) -> None:
        """``probe`` measured, and with ``ahead`` one more candidate beside it: the one the
        search would try next, or (``probe`` predicted too long, the answer so far measured
        elsewhere) that answer laid out here in full while ``probe`` is measured there."""
        fits = self.estimate.pages(probe) <= self.cap
        here, there = probe, None
        if self.ahead is not None:
            best = self.at.best
            if isinstance(best, _MeasuredElsewhere) and not fits:
                here, there = best.n, probe
            else:
                there = _then(self.at, self.estimate, self.cap, probe)
                there = None if there in self.known else there
        other = None
        if self.ahead is not None and there is not None:
            other = self.ahead(functools.partial(_probe, self.lay_out, self.measure, there))
        try:
            laid = self.lay_out(here, fits or here != probe)
            pages, used = self.measure(laid)
        except BaseException:
            if other is not None:
                other.cancel()
            raise
        if here == probe:
            self.known[probe] = (pages, used, laid)
        else:
            self.at.best = laid  # the answer so far, now printable
        if other is not None and there is not None and (answer := other.result()):
            self.known[there] = (*answer, _MeasuredElsewhere(there))
        if probe not in self.known:  # its measurement failed elsewhere: here, then
            laid = self.lay_out(probe, fits)
            self.known[probe] = (*self.measure(laid), laid)


def _probe(
    lay_out: Callable[[int, bool], Any], measure: Callable[[Any], tuple[int, float]], n: int
) -> tuple[int, float]:
    return measure(lay_out(n, False))


def _then(at: _Bracket, estimate: Estimate, cap: int, probe: int) -> int | None:
    """The candidate the search tries after ``probe`` if ``probe`` measures as predicted
    (which leaves the estimate's other predictions as they were), or None if it would stop."""
    predicted = estimate.pages(probe)
    guess = replace(estimate, measured={**estimate.measured, probe: predicted})
    after = replace(at)
    after.record(probe, predicted <= cap, _MeasuredElsewhere(probe))
    return after.next_probe(guess, cap)
