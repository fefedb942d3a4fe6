"""Renderings kept on disk, so an edition rebuilt with nothing changed is not laid out again.

A print PDF takes WeasyPrint most of a second per profile (several layouts to fit the
page cap), and the email's CSS inliner a few hundred milliseconds in a fresh process;
``digest build --force`` and every section variant ask for the same renderings again.
Each rendering is stored under a key that hashes everything that goes into it:

- the edition's content (every item and event, whole, as ``Edition.to_json`` has it);
- the settings (all of them but ``[print]`` for a PDF, with the profile itself instead, so
  one profile's ``page_cap`` does not lay out the others again) and the logo's bytes;
- for an email, the section variant's name; for a PDF, the profile;
- the bundled templates it uses (``templates/email`` or ``templates/print``);
- the source of the renderers (``digest/render``, the sanitiser and the notes' Markdown)
  and the installed packages (their ``.dist-info`` names, so an upgrade of WeasyPrint or
  premailer is a new key).

The same key gives the same bytes: the renderers are deterministic (the golden tests hold
them to it), so a stored rendering is what rendering again would give. Entries live in
``var/cache/render/`` (one ``.pdf`` with a ``.json`` beside it, or one ``.email.json``);
an entry unused for ``KEEP_DAYS`` is removed when a new one is written. A cache that
cannot be read or written is only slower: the rendering is made and used anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from digest.config import PrintProfile, Settings
from digest.models import Edition, RenderedEmail
from digest.render.print_edition import PrintEdition
from digest.render.templates import templates_dir

log = logging.getLogger(__name__)

KEEP_DAYS = 60
_PACKAGE = Path(__file__).resolve().parents[1]  # digest/
# The code whose output is stored: a change to any of it is a new key.
CODE = ("render", "collect/sanitize.py", "collect/notes.py", "models.py")


@dataclass(frozen=True, slots=True)
class RenderCache:
    """Stored renderings in ``folder`` (see the module docstring)."""

    folder: Path

    @classmethod
    def of(cls, settings: Settings) -> RenderCache:
        """The project's cache: ``var/cache/render``."""
        return cls(settings.var_dir / "cache" / "render")

    def email(self, edition: Edition, settings: Settings, *, chosen: str = "") -> RenderedEmail:
        """``render_email(edition, settings, chosen=chosen)``, from the cache when it is there."""
        from digest.render import check_email, render_email

        key = email_key(edition, settings, chosen)
        path = self.folder / f"{key}.email.json"
        stored = self._read_json(path)
        if stored is not None:
            email = RenderedEmail(stored["subject"], stored["html"], stored["text"])
            check_email(email, settings)
            log.debug("email of %s from the render cache (%s)", edition.id, key[:12])
            return email
        email = render_email(edition, settings, chosen=chosen)
        data = {"subject": email.subject, "html": email.html, "text": email.text}
        self._write(path, json.dumps(data, ensure_ascii=False).encode())
        return email

    def print(self, edition: Edition, settings: Settings, profile: PrintProfile) -> PrintEdition:
        """``render_print(edition, settings, profile)``, from the cache when it is there."""
        key = print_key(edition, settings, profile)
        pdf_path, meta_path = self.folder / f"{key}.pdf", self.folder / f"{key}.json"
        meta = self._read_json(meta_path)
        if meta is not None:
            try:
                pdf = pdf_path.read_bytes()
            except OSError:
                pdf = b""
            if pdf and len(pdf) == meta.get("bytes"):
                with contextlib.suppress(OSError):
                    os.utime(pdf_path)
                log.info(
                    "print edition %s, profile %s: %d pages, %d items left out, from the "
                    "render cache",
                    edition.id,
                    profile.name,
                    meta["pages"],
                    meta["left_out"],
                )
                return PrintEdition(pdf=pdf, pages=meta["pages"], left_out=meta["left_out"])
        from digest.render import print as printing  # WeasyPrint: only when laying out

        printed = printing.render_print(edition, settings, profile)
        # The PDF first, its description last: a description is only there with its PDF.
        if self._write(pdf_path, printed.pdf):
            meta = {"pages": printed.pages, "left_out": printed.left_out, "bytes": len(printed.pdf)}
            self._write(meta_path, json.dumps(meta).encode())
        return printed

    def emessage(
        self, edition: Edition, settings: Settings, profile: PrintProfile, title: str
    ) -> list[str]:
        """``emessage_parts`` of the edition for ``profile``, from the cache when it is there
        (its inputs are the PDF's; the text wrapping takes tens of milliseconds)."""
        path = self.folder / f"{_hash('emessage', print_key(edition, settings, profile), title)}"
        path = path.with_name(path.name + ".parts.json")
        stored = self._read_json(path)
        if stored is not None and isinstance(stored.get("parts"), list):
            return [str(part) for part in stored["parts"]]
        from digest.render.emessage import emessage_parts

        parts = emessage_parts(edition, settings.organisation, profile, title=title)
        self._write(path, json.dumps({"parts": parts}, ensure_ascii=False).encode())
        return parts

    def _read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used: kept past the pruning
        return data

    def _write(self, path: Path, data: bytes) -> bool:
        """``data`` at ``path``, atomically; False (and a warning) when the folder refuses."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._prune()
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("render cache %s not written (%s): rendering anyway", path, exc.strerror)
            return False
        return True

    def _prune(self) -> None:
        """Entries not used for KEEP_DAYS go (an edition's week is long past by then)."""
        old = time.time() - KEEP_DAYS * 86400
        for entry in self.folder.iterdir():
            try:
                if entry.stat().st_mtime < old:
                    entry.unlink()
            except OSError:
                continue


def email_key(edition: Edition, settings: Settings, chosen: str) -> str:
    """What an email rendering is stored under (see the module docstring)."""
    return _hash(
        "email",
        _edition(edition),
        settings.model_dump_json(),
        _logo(settings),
        chosen,
        _templates("email"),
        _code(),
    )


def print_key(edition: Edition, settings: Settings, profile: PrintProfile) -> str:
    """What a print rendering is stored under (see the module docstring). The PDF and its
    e-message parts both ask, for the same objects: the last few answers are kept."""
    for seen, key in _print_keys:
        if seen[0] is edition and seen[1] is settings and seen[2] is profile:
            return key
    key = _hash(
        "print",
        _edition(edition),
        settings.model_dump_json(exclude={"print"}),
        profile.model_dump_json(),
        _logo(settings),
        _templates("print"),
        _code(),
    )
    _print_keys[:] = [((edition, settings, profile), key), *_print_keys[:7]]
    return key


_print_keys: list[tuple[tuple[Edition, Settings, PrintProfile], str]] = []


def _hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode()
        digest.update(len(data).to_bytes(8, "big"))  # so no two lists of parts run together
        digest.update(data)
    return digest.hexdigest()


# The last edition's JSON (as ``to_json`` gives it, and as the keys' text): a build asks
# for it for every key and for edition.json; an Edition is immutable.
_last: list[tuple[Edition, dict[str, Any], str]] = []


def edition_data(edition: Edition) -> dict[str, Any]:
    """``edition.to_json()``, made once for the edition a build is on (do not change it)."""
    if not (_last and _last[0][0] is edition):
        data = edition.to_json()
        _last[:] = [(edition, data, json.dumps(data, sort_keys=True, ensure_ascii=False))]
    return _last[0][1]


def _edition(edition: Edition) -> str:
    edition_data(edition)
    return _last[0][2]


def _logo(settings: Settings) -> str:
    logo = settings.branding.logo
    if not logo:
        return ""
    try:
        return hashlib.sha256(settings.resolve(logo).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"  # the renderer says what is wrong with it


def _templates(folder: str) -> str:
    """The template files' names and contents (read each build: staff may edit them)."""
    return _files_hash(templates_dir() / folder)


@cache
def _code() -> str:
    """The renderers' source and the installed packages: fixed for a process's life."""
    code = "".join(_files_hash(_PACKAGE / name) for name in CODE)
    return code + ",".join(_installed())


def _files_hash(root: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for path in files:
        if path.suffix == ".pyc":
            continue
        digest.update(str(path.relative_to(root.parent)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _installed() -> list[str]:
    """The ``.dist-info`` folders beside WeasyPrint's (found without importing it)."""
    spec = importlib.util.find_spec("weasyprint")
    if spec is None or spec.origin is None:
        return []
    site = Path(spec.origin).parents[1]
    return sorted(name for name in os.listdir(site) if name.endswith(".dist-info"))
