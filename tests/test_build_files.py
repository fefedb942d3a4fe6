"""The build's files: a rebuild with nothing changed leaves them as they are; anything that
changed is replaced, and e-message parts an earlier build left are removed (issue 18)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from digest.build import write_files
from digest.models import Attachment, RenderedEmail
from tests.golden_edition import golden_edition

EMAIL = RenderedEmail("Subject", "<p>html</p>", "text\n")
TEXT = "text/plain; charset=utf-8"


def parts(*texts: str) -> list[Attachment]:
    return [
        Attachment(f"emessage-letter-{i}.txt", TEXT, t.encode()) for i, t in enumerate(texts, 1)
    ]


def seen(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Each file's bytes and inode (a file replaced is a new one)."""
    return {p.name: (p.read_bytes(), p.stat().st_ino) for p in sorted(folder.iterdir())}


def test_a_rebuild_with_nothing_changed_leaves_every_file_as_it_was(tmp_path: Path) -> None:
    edition = golden_edition()
    write_files(tmp_path, edition, EMAIL, parts("one", "two"))
    before = seen(tmp_path)
    write_files(tmp_path, edition, EMAIL, parts("one", "two"))
    assert seen(tmp_path) == before
    assert json.loads(before["edition.json"][0]) == edition.to_json()


def test_what_changed_is_replaced_and_an_earlier_builds_parts_go(tmp_path: Path) -> None:
    edition = golden_edition()
    write_files(tmp_path, edition, EMAIL, parts("one", "two", "three"))
    (tmp_path / "email.txt").write_bytes(b"edited by hand")  # same name, other bytes
    os.truncate(tmp_path / "emessage-letter-1.txt", 1)
    write_files(tmp_path, edition, RenderedEmail("Subject", "<p>new</p>", "text\n"), parts("1"))
    files = {name: data for name, (data, _) in seen(tmp_path).items()}
    assert files["email.html"] == b"<p>new</p>"
    assert files["email.txt"] == b"text\n"
    assert files["emessage-letter-1.txt"] == b"1"
    assert "emessage-letter-2.txt" not in files and "emessage-letter-3.txt" not in files
    assert not [name for name in files if name.endswith(".tmp")]
