"""Assembling the week's edition: window, previous cutoff, sections, caps, subject."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from digest.build import build
from digest.cli import app
from digest.collect import collect
from digest.errors import ConfigError, DigestError
from digest.store.tables import items
from tests.conftest import EXAMPLE_SOURCES as SOURCES
from tests.conftest import EXAMPLES, NOW


@pytest.fixture
def collected(make_project):
    def make(extra: str = ""):
        project = make_project(SOURCES + extra)
        settings, engine = project.settings(), project.engine()
        collect(settings, engine, NOW)
        return project, settings, engine

    return make


def test_the_week_holds_only_items_of_its_window(collected, tmp_path: Path) -> None:
    _, settings, engine = collected()
    result = build(settings, engine, week=None, out=tmp_path / "out", force=False, now=NOW)
    edition = result.edition
    assert edition is not None and edition.id == "2026-W48"
    titles = [i.title for s in edition.sections for i in s.items]
    assert "Decriminalisation bill A.4120 clears Assembly health committee" in titles
    # Published 18 November, before the seven-day window.
    assert not any("18 Nov" in t or "Overdose deaths" in t for t in titles)
    assert all(i.published > NOW - timedelta(days=7) for s in edition.sections for i in s.items)
    assert edition.editor_note is not None
    assert edition.editor_note.title == "From the editor: a week of small wins"


def test_sections_follow_the_configured_order_with_pins_first(collected, tmp_path) -> None:
    _, settings, engine = collected()
    edition = build(settings, engine, week=None, out=tmp_path, force=False, now=NOW).edition
    assert edition is not None
    assert [s.key for s in edition.sections] == ["news", "stories", "events"]
    stories = edition.sections[1].items
    assert stories[0].pinned and stories[0].title.startswith("Books-to-prisoners drive")
    news = edition.sections[0].items
    assert [i.published for i in news] == sorted((i.published for i in news), reverse=True)


def test_a_capped_section_links_to_the_rest(collected, tmp_path: Path) -> None:
    _, settings, engine = collected(
        '[edition]\nmax_items_per_section = { news = 3 }\nmore_url = "https://x.example.org/all"\n'
    )
    result = build(settings, engine, week=None, out=tmp_path, force=False, now=NOW)
    news = result.edition.sections[0] if result.edition else None
    assert news is not None and len(news.items) == 3 and news.omitted == 4
    html = (tmp_path / "email.html").read_text()
    text = (tmp_path / "email.txt").read_text()
    assert "4 more in News on our website" in html
    assert "https://x.example.org/all" in html and "https://x.example.org/all" in text


def test_events_cover_the_next_fourteen_days(collected, tmp_path: Path) -> None:
    _, settings, engine = collected()
    edition = build(settings, engine, week=None, out=tmp_path, force=False, now=NOW).edition
    assert edition is not None
    events = edition.sections[-1].events
    assert events and all(NOW <= e.start < NOW + timedelta(days=14) for e in events)
    assert [e.start for e in events] == sorted(e.start for e in events)


def test_next_week_starts_at_the_previous_cutoff(collected, tmp_path: Path) -> None:
    _, settings, engine = collected()
    build(settings, engine, week=None, out=tmp_path / "a", force=False, now=NOW)
    later = NOW + timedelta(days=7)
    collect(settings, engine, later)
    nothing = build(settings, engine, week=None, out=tmp_path / "b", force=False, now=later)
    assert nothing.edition is None
    assert not (tmp_path / "b").exists()


def test_an_item_collected_late_makes_the_next_edition(collected, tmp_path: Path) -> None:
    _, settings, engine = collected()
    build(settings, engine, week=None, out=tmp_path / "a", force=False, now=NOW)
    late = NOW + timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(items).values(
                key="late",
                source="news",
                section="news",
                kind="article",
                title="Late story",
                title_key="late story",
                url="https://late.example.org/",
                url_key="late.example.org",
                summary="s",
                body_html="",
                author="",
                pinned=False,
                published=NOW - timedelta(hours=1),
                first_seen=late,
            )
        )
    later = NOW + timedelta(days=7)
    edition = build(settings, engine, week=None, out=tmp_path / "b", force=False, now=later).edition
    assert edition is not None
    assert [i.title for s in edition.sections for i in s.items] == ["Late story"]


def test_build_writes_the_three_files(collected, tmp_path: Path) -> None:
    _, settings, engine = collected()
    build(settings, engine, week=None, out=tmp_path, force=False, now=NOW)
    data = json.loads((tmp_path / "edition.json").read_text())
    assert data["id"] == "2026-W48"
    assert [s["key"] for s in data["sections"]] == ["news", "stories", "events"]
    assert (tmp_path / "email.html").read_text().startswith("<!DOCTYPE html>")
    assert "Unsubscribe: -unsubscribe_url-" in (tmp_path / "email.txt").read_text()


def test_subject_placeholders(collected, tmp_path: Path) -> None:
    _, settings, engine = collected('[edition]\nsubject = "{org} {week}: {count} stories"\n')
    edition = build(settings, engine, week=None, out=tmp_path, force=False, now=NOW).edition
    assert edition is not None
    assert edition.subject == "Test Coalition 2026-W48: 10 stories"


def test_a_bad_subject_placeholder_names_the_key(collected, tmp_path: Path) -> None:
    _, settings, engine = collected('[edition]\nsubject = "{organisation}"\n')
    with pytest.raises(ConfigError, match=r"edition\.subject"):
        build(settings, engine, week=None, out=tmp_path, force=False, now=NOW)


@pytest.mark.parametrize("week", ["2026-48", "2026-W60", "2027-W10"])
def test_bad_or_future_weeks_are_refused(collected, tmp_path: Path, week: str) -> None:
    _, settings, engine = collected()
    with pytest.raises(DigestError, match=week):
        build(settings, engine, week=week, out=tmp_path, force=False, now=NOW)


def test_a_past_week_rebuilds_up_to_that_weeks_end(collected, tmp_path: Path) -> None:
    _, settings, engine = collected()
    result = build(settings, engine, week="2026-W47", out=tmp_path, force=False, now=NOW)
    assert result.edition is not None
    assert result.plan.cutoff.isoformat() == "2026-11-23T00:00:00-05:00"
    titles = [i.title for s in result.edition.sections for i in s.items]
    assert "City council approves two more overdose prevention sites" not in titles
    # The subject and heading name the week's last day, not the Monday after it.
    assert result.edition.subject.endswith("the week of 22 November 2026")
    # (headed with the name of the first digest list, "Weekly" in the test config)
    assert "Weekly, Sunday 22 November 2026" in (tmp_path / "email.txt").read_text()


def test_cli_build_with_nothing_new_says_so_and_exits_0(make_project, tmp_path: Path) -> None:
    project = make_project(f'[[sources.feeds]]\nname = "n"\nurl = "{EXAMPLES}/feeds/news.xml"\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--config", str(project.config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no new items" in result.output
    assert not out.exists()


def test_an_unwritable_out_folder_is_one_clear_error(collected, tmp_path: Path) -> None:
    project, _, _ = collected()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    import time_machine

    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(
            app, ["build", "--config", str(project.config), "--out", str(blocker)]
        )
    assert result.exit_code == 1
    assert "cannot write the edition" in result.output and "Traceback" not in result.output
