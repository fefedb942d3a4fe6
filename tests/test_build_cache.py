"""The render cache: a rebuild with nothing changed lays nothing out, and any change to what
goes into a rendering (a story edited at the desk, the logo, a profile's page_cap, a
template) gives a new one; section variants are served from it too."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from weasyprint.document import Document

from digest import build as building
from digest.build import BuildResult, build
from digest.context import App
from digest.lifecycle import editing
from digest.render import html as email_html
from digest.render import print as printing
from digest.render import render_email
from digest.render import templates as template_module
from digest.render.cache import RenderCache
from digest.store import audience
from tests.conftest import EXAMPLE_SOURCES, EXAMPLES, NOW, Project, import_people, write_project

WEEK = "2026-W48"
PRINT = """
[[lists]]
slug = "inside"
name = "Inside"
kind = "print"

[print]
default_profile = "letter"

[[print.profiles]]
name = "letter"
page_cap = PAGE_CAP

[[print.profiles]]
name = "a4"
paper = "a4"
page_cap = 12

[branding]
logo = "logo.png"
logo_alt = "Test Coalition"
"""


@dataclass
class Calls:
    """What was rendered afresh: PDFs per profile, WeasyPrint layouts, CSS inlinings."""

    prints: Counter[str] = field(default_factory=Counter)
    layouts: int = 0
    inlined: int = 0

    def clear(self) -> None:
        self.prints.clear()
        self.layouts = self.inlined = 0


def _counting(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Count what is rendered afresh, from now until the monkeypatch is undone."""
    seen = Calls()
    # Every WeasyPrint layout starts here (each goes through HTML.render).
    real_print, real_layout, real_inline = (
        printing.render_print,
        Document._build_layout_context.__func__,  # type: ignore[attr-defined]
        email_html.inline_css,
    )

    def render_print(edition, settings, profile):  # type: ignore[no-untyped-def]
        seen.prints[profile.name] += 1
        return real_print(edition, settings, profile)

    def layout(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.layouts += 1
        return real_layout(cls, *args, **kwargs)

    def inline_css(html: str) -> str:
        seen.inlined += 1
        return real_inline(html)

    monkeypatch.setattr(printing, "render_print", render_print)
    monkeypatch.setattr(Document, "_build_layout_context", classmethod(layout))
    monkeypatch.setattr("digest.render.inline_css", inline_css)
    return seen


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    return _counting(monkeypatch)


@dataclass(frozen=True)
class FirstBuild:
    """The module's one first build: its folder (to copy), what it rendered and wrote."""

    folder: Path
    calls: Calls
    result: BuildResult
    pdfs: dict[str, bytes]


SECRETS = ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY", "DIGEST_SECRET_KEY")


@pytest.fixture(scope="module")
def first_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstBuild]:
    """The examples' week with two print profiles, a logo, and readers who chose Events
    only (by email, and on paper), so the build renders a section variant of each: made
    and built once (laying out its PDFs takes seconds), then copied for each test."""
    folder = tmp_path_factory.mktemp("built")
    with pytest.MonkeyPatch.context() as mp:
        for name in SECRETS:
            mp.delenv(name, raising=False)
        made = _made(folder)
        seen = _counting(mp)
        result = _build(made)
        mp.undo()
        yield FirstBuild(folder, seen, result, _pdfs(result))


def _made(folder: Path) -> Project:
    shutil.copy(EXAMPLES / "branding" / "logo.png", folder / "logo.png")
    made = write_project(folder, EXAMPLE_SOURCES + PRINT.replace("PAGE_CAP", "4"))
    settings, engine = made.settings(), made.engine()
    from digest.collect import collect

    collect(settings, engine, NOW)
    for slug, fmt, person in (("weekly", "html", "ana"), ("inside", "print", "cy")):
        csv = folder / f"{slug}.csv"
        csv.write_text(f"email,format\n{person}@example.org,{fmt}\n", encoding="utf-8")
        import_people(settings, engine, csv, slug)
    with engine.begin() as conn:
        for person in ("ana", "cy"):
            sub = audience.find_subscriber(conn, f"{person}@example.org")
            assert sub is not None
            audience.set_sections(conn, sub.id, ["events"], now=NOW)
    engine.dispose()
    return made


@pytest.fixture
def project(first_build: FirstBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A copy of the built project, its render cache with it: its own to change."""
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(first_build.folder, tmp_path, dirs_exist_ok=True)
    return Project(tmp_path)


def _build(project: Project) -> BuildResult:
    settings = project.settings()
    return build(settings, project.engine(), week=WEEK, out=None, force=True, now=NOW)


def _pdfs(result: BuildResult) -> dict[str, bytes]:
    """Every PDF the build wrote, the variants' too, by file name."""
    assert result.folder is not None
    return {
        str(p.relative_to(result.folder)): p.read_bytes()
        for p in sorted(result.folder.rglob("*.pdf"))
    }


def test_a_rebuild_with_nothing_changed_lays_nothing_out(
    first_build: FirstBuild, project: Project, calls: Calls
) -> None:
    first, seen = first_build.result, first_build.calls
    assert first.variants and first.variants[0].files  # a variant, by email and on paper
    assert seen.prints == {"letter": 2, "a4": 1}  # the whole edition's two, the variant's
    assert seen.layouts >= 3 and seen.inlined == 2  # the whole email and the variant's
    before, html = first_build.pdfs, first.email.html if first.email else ""
    assert set(before) == {"print-letter.pdf", "print-a4.pdf", "sections/events/print-letter.pdf"}

    again = _build(project)  # a copy of the built project, its cache with it
    assert calls == Calls()  # no WeasyPrint, no premailer
    assert _pdfs(again) == before
    assert again.email is not None and again.email.html == html
    assert again.prints == first.prints
    assert [f.data for v in again.variants for f in v.files] == [
        f.data for v in first.variants for f in v.files
    ]
    # What the cache gave is what rendering gives.
    assert first.edition is not None
    assert render_email(first.edition, project.settings()) == again.email


def test_a_story_edited_at_the_desk_is_laid_out_again(project, calls: Calls) -> None:
    before = _pdfs(_build(project))
    edition = _build(project).edition
    assert edition is not None
    story = next(s for s in edition.sections if s.key == "news").items[0]
    app = App(project.settings(), project.engine())
    app.clock = lambda: NOW
    calls.clear()
    editing.choose(app, WEEK, story.key, "edit", who="desk", title="A title the desk wrote")
    assert calls.prints == {"letter": 1, "a4": 1}  # the variant has no news: not again
    after = _pdfs(_build(project))
    assert after["print-letter.pdf"] != before["print-letter.pdf"]
    assert after["print-a4.pdf"] != before["print-a4.pdf"]
    assert after["sections/events/print-letter.pdf"] == before["sections/events/print-letter.pdf"]


def test_a_new_logo_is_a_new_rendering(project, tmp_path: Path, calls: Calls) -> None:
    before = _pdfs(_build(project))
    with Image.open(tmp_path / "logo.png") as image:
        changed = image.convert("RGBA")
    ImageDraw.Draw(changed).rectangle((0, 0, changed.width // 2, changed.height), fill="black")
    changed.save(tmp_path / "logo.png")
    calls.clear()
    after = _pdfs(_build(project))
    assert calls.prints == {"letter": 2, "a4": 1} and calls.inlined == 2
    assert all(after[name] != before[name] for name in before)


def test_a_profiles_page_cap_lays_out_that_profile_only(
    project, tmp_path: Path, calls: Calls
) -> None:
    before = _pdfs(_build(project))
    config = tmp_path / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("page_cap = 4", "page_cap = 3"), encoding="utf-8")
    calls.clear()
    after = _pdfs(_build(project))
    assert calls.prints == {"letter": 2}  # the a4 profile is as it was
    assert after["print-a4.pdf"] == before["print-a4.pdf"]
    assert after["print-letter.pdf"] != before["print-letter.pdf"]


def test_a_changed_template_is_a_new_rendering(
    project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: Calls
) -> None:
    before = _pdfs(_build(project))
    templates = tmp_path / "templates"
    shutil.copytree(template_module.templates_dir(), templates)
    page = templates / "print" / "print.html.j2"
    page.write_text(
        page.read_text(encoding="utf-8").replace("</body>", "<p>Posted by the test.</p></body>"),
        encoding="utf-8",
    )
    monkeypatch.setattr(template_module, "bundled", lambda name: tmp_path / name)
    template_module.html_env.cache_clear()
    try:
        calls.clear()
        after = _pdfs(_build(project))
    finally:
        monkeypatch.undo()
        template_module.html_env.cache_clear()
    assert calls.prints == {"letter": 2, "a4": 1}
    assert calls.inlined == 0  # the email's templates did not change
    assert all(after[name] != before[name] for name in before)


def test_an_unwritable_cache_only_makes_the_build_slower(
    first_build: FirstBuild, project: Project, calls: Calls
) -> None:
    blocked = project.folder / "var" / "cache"
    shutil.rmtree(blocked)  # the copy's render cache: as if it had never been written
    blocked.write_text("not a folder", encoding="utf-8")
    built = _build(project)
    assert calls.prints == {"letter": 2, "a4": 1} and calls.inlined == 2  # all laid out again
    assert _pdfs(built) == first_build.pdfs  # the same files as with a cache
    assert blocked.read_text(encoding="utf-8") == "not a folder"
    assert RenderCache.of(project.settings()).folder == blocked / "render"
    assert building.RenderCache is RenderCache
