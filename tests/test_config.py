"""config.toml loading: precedence, unknown keys, bad values, one clear line each."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.config import load_settings
from digest.errors import ConfigError
from tests.conftest import ROOT


def test_the_sample_config_loads_and_names_every_documented_table() -> None:
    settings = load_settings(ROOT / "config.toml")
    assert settings.organisation.timezone == "America/New_York"
    assert [s.name for s in settings.sources.feeds] == ["news", "stories"]
    assert {x.slug for x in settings.lists} >= {"weekly", "alerts", "inside"}
    assert settings.print.profiles[0].emessage_chars == 13000
    assert settings.schedule.send == "0 7 * * thu"


def test_environment_beats_the_file_and_flags_beat_both(
    make_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("[edition]\nwindow_days = 3\n")
    assert project.settings().edition.window_days == 3
    monkeypatch.setenv("DIGEST_EDITION__WINDOW_DAYS", "5")
    assert project.settings().edition.window_days == 5
    monkeypatch.setenv("DIGEST_DATABASE_URL", "sqlite:///from-env.db")
    assert project.settings(database_url="sqlite:///flag.db").database_url == "sqlite:///flag.db"


def test_a_misspelt_key_is_named_with_its_file(make_project) -> None:
    project = make_project("[edition]\nwindow_dayz = 3\n")
    with pytest.raises(ConfigError) as caught:
        project.settings()
    assert "edition.window_dayz" in str(caught.value)
    assert str(project.config) in str(caught.value)


def test_a_misspelt_environment_variable_is_named(make_project, monkeypatch) -> None:
    project = make_project()
    monkeypatch.setenv("DIGEST_EDITION__WINDOWDAYS", "3")
    with pytest.raises(ConfigError, match="DIGEST_EDITION__WINDOWDAYS"):
        project.settings()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[organisation]\ntimezone = "Mars/Olympus"\n', "unknown timezone"),
        ('[edition]\nwindow_days = "seven"\n', "edition.window_days"),
        ('[[sources.feeds]]\nname = "a"\n', "sources.feeds[1].url is required"),
        ("[edition\n", "not valid TOML"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(tmp_path: Path, extra: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(extra, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_settings(path)


def test_duplicate_source_names_are_refused(make_project) -> None:
    project = make_project(
        '[[sources.feeds]]\nname = "a"\nurl = "a.xml"\n'
        '[[sources.feeds]]\nname = "a"\nurl = "b.xml"\n'
    )
    with pytest.raises(ConfigError, match="used twice"):
        project.settings()


def test_cli_reports_config_errors_in_one_line_with_exit_1(make_project) -> None:
    project = make_project("[edition]\nsectons = []\n")
    result = CliRunner().invoke(app, ["build", "--config", str(project.config)])
    assert result.exit_code == 1
    assert "edition.sectons" in result.output
    assert "Traceback" not in result.output


def test_missing_config_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["collect", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "--config" in result.output and "Traceback" not in result.output


def test_digest_config_environment_variable_picks_the_file(make_project, monkeypatch) -> None:
    project = make_project('[edition]\nsubject = "From env config"\n')
    monkeypatch.setenv("DIGEST_CONFIG", str(project.config))
    assert load_settings().edition.subject == "From env config"


def test_relative_paths_resolve_against_the_config_folder(make_project) -> None:
    project = make_project()
    settings = project.settings()
    assert settings.resolve("var/outbox") == project.folder / "var" / "outbox"


ORG = '[organisation]\nname = "Org"\npostal_address = "PO Box 1, Town"\n'
LIST = '[[lists]]\nslug = "weekly"\nname = "Weekly"\n'
DELIVERY = '[delivery]\nfrom_email = "news@example.org"\nbase_url = "https://news.example.org"\n'


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (  # approval on, and the preview list it would go to does not exist
            ORG + LIST + DELIVERY + '[edition]\nrequire_approval = true\npreview_list = "eds"\n',
            "edition.preview_list 'eds' names no list in [[lists]]",
        ),
        (
            ORG + LIST + DELIVERY.replace("https://news.example.org", "news.example.org"),
            "delivery.base_url: is not an absolute http(s) URL",
        ),
        (
            ORG + LIST + DELIVERY.replace("https://news.example.org", "http://news.example.org"),
            "delivery.base_url: must be https",
        ),
        (
            ORG + LIST + DELIVERY.replace("news@example.org", "newsletter"),
            "delivery.from_email: is not an email address",
        ),
        (
            ORG + LIST + '[delivery]\nfrom_email = "a@example.org"\n',
            "delivery.base_url is required",
        ),
        (ORG + LIST + LIST + DELIVERY, "lists[2]: the slug 'weekly' is used by an earlier list"),
        (
            ORG
            + LIST
            + DELIVERY
            + '[[sources.feeds]]\nname = "f"\nurl = "f.xml"\nsection = "blog"\n',
            "sources.feeds[1].section 'blog' is not in edition.sections (news, stories, events)",
        ),
        (
            ORG + LIST + DELIVERY + "[edition.max_items_per_section]\nnwes = 3\n",
            "edition.max_items_per_section.nwes names no section in edition.sections",
        ),
        (  # "+" joins a reader's chosen sections in the name of their rendering
            ORG + LIST + DELIVERY + '[edition]\nsections = ["news", "news+events"]\n',
            "edition.sections[2] 'news+events' is not a section key",
        ),
        (  # "," joins them where a membership stores them
            ORG + LIST + DELIVERY + '[edition]\nsections = ["news", "a,b"]\n',
            "edition.sections[2] 'a,b' is not a section key",
        ),
        (  # a rendering's files are named by their keys: nothing that climbs out of a folder
            ORG + LIST + DELIVERY + '[edition]\nsections = ["..", "news"]\n',
            "edition.sections[1] '..' is not a section key",
        ),
        (
            ORG + LIST + DELIVERY + '[edition]\nsections = ["news", "events", "news"]\n',
            "edition.sections[3] 'news' is listed twice",
        ),
    ],
)
def test_configuration_that_would_break_a_send_is_refused_at_load(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    result = CliRunner().invoke(app, ["editions", "--config", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.output


@pytest.mark.parametrize("base_url", ["http://localhost:8000", "http://127.0.0.1:8000/"])
def test_plain_http_is_only_for_this_machine(tmp_path: Path, base_url: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(ORG + LIST + DELIVERY.replace("https://news.example.org", base_url))
    assert load_settings(path).delivery.base_url == base_url.rstrip("/")


def test_without_a_delivery_table_it_builds_but_never_sends(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "d.db"}"\n' + ORG + LIST)
    cfg = ["--config", str(path)]
    assert CliRunner().invoke(app, ["build", "--force", *cfg]).exit_code == 0
    sent = CliRunner().invoke(app, ["send", "--yes", *cfg])
    assert sent.exit_code == 1 and "no [delivery] table" in sent.output
    assert not (tmp_path / "var" / "outbox").exists()


def test_section_keys_may_hold_spaces_and_accents(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    sections = '[edition]\nsections = ["news", "harm reduction", "événements"]\n'
    path.write_text(ORG + LIST + DELIVERY + sections, encoding="utf-8")
    assert load_settings(path).edition.sections == ["news", "harm reduction", "événements"]
