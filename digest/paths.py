"""Where the bundled templates, examples and sample lists live.

In a checkout they sit beside the package; in an installed wheel they are
copied into ``digest/_data``.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """Path of a bundled folder or file (``templates``, ``examples``, ``subscribers``)."""
    installed = _PACKAGE / "_data" / name
    if installed.exists():
        return installed
    return _PACKAGE.parent / name


def private_folder(path: Path) -> Path:
    """``path`` as a folder, created readable by its owner only (0700) if it is new: the
    data folder holds personal data, password hashes and the signing key."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
