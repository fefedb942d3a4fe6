"""Lines of text fitted into a fixed box: wrapped, then shrunk, never spilling.

Envelope windows and labels have a fixed size and nothing may fall outside them (a
mailroom returns a letter whose address it cannot read). So the fitting is done here,
before WeasyPrint lays anything out: each line's width is measured with the advance
widths of the font the mailing stylesheet asks for (DejaVu Sans, from Debian's
fonts-dejavu-core), a line too wide is wrapped at spaces (a word too wide for a whole
line is cut), and the largest font size whose lines all fit is kept. The template then
prints the lines exactly as fitted, one block each, without wrapping again.

Measured widths leave a margin (``SAFETY``) for kerning and rounding. A character the
font lacks (Chinese, say) is counted a full em, the width of the fallback fonts' glyphs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from digest.collect.sanitize import one_line

FONT_FILES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # Debian, Ubuntu
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),  # Arch
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),  # Fedora
    Path("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf"),
)
SAFETY = 1.04
MISSING_EM = 1.0  # a character the font has no glyph for
UNKNOWN_FONT_EM = 0.75  # every character, when DejaVu Sans is not where we look


@dataclass(frozen=True, slots=True)
class Fitted:
    """Lines that fit their box at ``size`` points, ``leading`` points apart, the first
    line's top ``top`` points below the box's top (the block is centred vertically)."""

    lines: tuple[str, ...]
    size: float
    leading: float
    top: float


@dataclass(frozen=True, slots=True)
class Fit:
    """Where lines must fit (points) and the sizes to try, largest first, with their
    line heights as multiples of the size. ``room`` is the space wanted above and below
    the lines: the largest size that leaves it is taken, else the largest that fits."""

    width: float
    height: float
    sizes: tuple[tuple[float, float], ...]
    room: float = 0.0

    @property
    def smallest(self) -> float:
        return min(size for size, _ in self.sizes)


class Metrics:
    """Advance widths of one font, in ems, by code point."""

    def __init__(self, widths: dict[int, float], default: float) -> None:
        self.widths = widths
        self.default = default

    def width(self, text: str, size: float) -> float:
        """The width of ``text`` at ``size`` points, in points, with the safety margin."""
        get = self.widths.get
        return sum(get(ord(c), self.default) for c in text) * size * SAFETY


@cache
def dejavu_sans() -> Metrics:
    """The metrics of DejaVu Sans, or a wide estimate when its file is not found."""
    for path in FONT_FILES:
        if path.is_file():
            font = TTFont(str(path), lazy=True)
            units = font["head"].unitsPerEm
            advances = font["hmtx"].metrics
            widths = {cp: advances[name][0] / units for cp, name in font.getBestCmap().items()}
            font.close()
            return Metrics(widths, MISSING_EM)
    return Metrics({}, UNKNOWN_FONT_EM)


def fit_lines(lines: Iterable[str], box: Fit, metrics: Metrics | None = None) -> Fitted | None:
    """``lines`` wrapped and sized to fit ``box``, at the largest size that does; None when
    even the smallest size is too big (then the text must be shortened, not printed)."""
    metrics = metrics or dejavu_sans()
    clean = [text for text in (one_line(line) for line in lines) if text]
    tries = []
    for size, factor in box.sizes:
        wrapped = [part for text in clean for part in wrap(text, size, box.width, metrics)]
        leading = size * factor
        needed = leading * len(wrapped)  # each line a block of line-height ``leading``
        if needed <= box.height:
            top = (box.height - needed) / 2
            tries.append(Fitted(tuple(wrapped), size, round(leading, 3), round(top, 3)))
    roomy = [fitted for fitted in tries if fitted.top >= box.room]
    if roomy:
        return roomy[0]
    return tries[0] if tries else None


def shortfall(lines: Iterable[str], box: Fit, metrics: Metrics | None = None) -> tuple[int, int]:
    """For text that does not fit: how many lines it takes at the box's last (smallest)
    size and line height, and how many the box holds at them."""
    metrics = metrics or dejavu_sans()
    size, factor = box.sizes[-1]
    clean = [text for text in (one_line(line) for line in lines) if text]
    taken = sum(len(wrap(text, size, box.width, metrics)) for text in clean)
    return taken, int(box.height // (size * factor))


def wrap(text: str, size: float, width: float, metrics: Metrics) -> list[str]:
    """``text`` as lines no wider than ``width`` points: broken at spaces, and a word wider
    than a whole line cut where it must be."""
    if metrics.width(text, size) <= width:
        return [text]
    out: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if metrics.width(candidate, size) <= width:
            current = candidate
            continue
        if current:
            out.append(current)
        pieces = _cut(word, size, width, metrics)
        out.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        out.append(current)
    return out


def _cut(word: str, size: float, width: float, metrics: Metrics) -> Sequence[str]:
    """A word in pieces that each fit (at least one character each)."""
    pieces = []
    while metrics.width(word, size) > width and len(word) > 1:
        end = 1
        while end < len(word) and metrics.width(word[: end + 1], size) <= width:
            end += 1
        pieces.append(word[:end])
        word = word[end:]
    pieces.append(word)
    return pieces
