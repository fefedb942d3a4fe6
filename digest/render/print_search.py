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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


def search(
    lay_out: Callable[[int, bool], Any],
    measure: Callable[[Any], tuple[int, float]],
    estimate: Estimate,
    cap: int,
    bracket: tuple[int, int, Any],
) -> Found | None:
    """The fewest ``n`` in the ``bracket`` with ``lay_out(n)`` in at most ``cap`` pages,
    assuming more left out never takes more pages; None when none does.

    ``bracket`` is ``(lo, hi, layout)``: ``lo`` known too long (or one under the range),
    ``hi`` known to fit with that layout (or one over the range, layout None). ``measure``
    reads a layout's pages and pages used (whole pages before the last, and its fill).
    ``lay_out(n, printable)`` is told whether ``n`` is predicted to fit: one predicted too
    long may be laid out as a probe, not to be printed (the caller lays the answer out again
    when its layout is one).
    """
    lo, hi, best = bracket
    same, last = 0, None
    while hi - lo > 1:
        probe = estimate.boundary(lo, hi, cap)
        if same >= 2:  # the last three probes moved the same end: step faster
            if lo in estimate.measured and best is not None:  # both ends known
                probe = (lo + hi) // 2
            elif last:
                probe = min(probe, hi - 2**same)
            else:
                probe = max(probe, lo + 2**same)
        probe = min(hi - 1, max(lo + 1, probe))
        laid = lay_out(probe, estimate.pages(probe) <= cap)
        pages, used = measure(laid)
        estimate.measured[probe] = used
        fits = pages <= cap
        if fits:
            hi, best = probe, laid
        else:
            lo = probe
        same = same + 1 if fits == last else 0
        last = fits
    return None if best is None else Found(hi, best)
