"""`digest init`: a new organisation's folder from flags or a terminal, that loads, collects
and builds; and the commands that find nothing to do saying what to add."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import Result
from typer.testing import CliRunner

from digest.cli import app
from digest.config import load_settings
from tests.conftest import EXAMPLE_SOURCES, NOW

SECRET = "a-test-secret-key-that-must-never-be-written-down"
FLAGS = {
    "--name": 'Riverside "Mutual" Aid',
    "--postal-address": "12 Main St\nRiverside, CA 92501",
    "--website": "https://riverside.example.net",
    "--timezone": "America/Los_Angeles",
    "--from-email": "news@riverside.example.net",
    "--base-url": "https://digest.riverside.example.net",
}
# The bundled feeds and calendar, without the notes folder init already configured.
FEEDS = EXAMPLE_SOURCES.split("[sources.notes]")[0]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DIGEST_CONFIG", "DIGEST_DATABASE_URL", "SENDGRID_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)


def _digest(*args: str, code: int = 0, input: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), input=input)
    assert result.exit_code == code, result.output
    return result


def _init(folder: Path, *, code: int = 0, **changed: str | None) -> Result:
    flags = {**FLAGS, **changed}
    args = [part for flag, value in flags.items() if value is not None for part in (flag, value)]
    return _digest("init", str(folder), *args, code=code)


def _keys(table: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in table.items():
        found.append(prefix + key)
        for inner in value if isinstance(value, list) else [value]:
            if isinstance(inner, dict):
                found += _keys(inner, f"{prefix}{key}.")
    return found


def test_init_by_flags_writes_a_config_that_loads_with_the_answers(tmp_path: Path) -> None:
    folder = tmp_path / "riverside"
    out = _init(folder).output
    settings = load_settings(folder / "config.toml")
    org, delivery = settings.organisation, settings.delivery
    assert org.name == 'Riverside "Mutual" Aid'
    assert org.postal_address == "12 Main St\nRiverside, CA 92501"
    assert org.website == "https://riverside.example.net"
    assert org.timezone == "America/Los_Angeles"
    assert delivery.from_email == "news@riverside.example.net"
    assert delivery.base_url == "https://digest.riverside.example.net"
    settings.check_can_send()  # a [delivery] table of its own
    assert [(x.slug, x.kind) for x in settings.lists] == [
        ("weekly", "digest"),
        ("staff", "digest"),
        ("alerts", "alerts"),
        ("inside", "print"),
    ]
    assert settings.edition.preview_list == "staff"
    assert settings.sources.feeds == [] and settings.sources.calendars == []
    assert settings.sources.notes is not None
    notes = settings.resolve(settings.sources.notes.dir)
    assert notes == (folder / "notes").resolve() and notes.is_dir() and not any(notes.iterdir())
    template = (folder / "subscribers" / "template.csv").read_text()
    assert template == (
        "email,name,format,timezone,profile,inmate_id,facility,unit,address1,address2,city,"
        "state,zip\n"
    )
    assert "add a feed under [[sources.feeds]]" in out
    assert "digest subscribers import subscribers/you.csv --list weekly" in out
    assert "digest serve" in out


def test_the_new_config_keeps_the_samples_comments_but_nothing_of_its_coalition(
    tmp_path: Path,
) -> None:
    _init(tmp_path / "org")
    text = (tmp_path / "org" / "config.toml").read_text()
    assert "# Where replies go; also the unsubscribe mailto" in text  # the sample's comments
    assert "# [[sources.feeds]]" in text and '# url = "https://example.org/feeds/news.xml"' in text
    assert "# [branding]" in text and "# inside_note" in text
    for sample_only in ("Harbor City", "harborcity", "4417", "examples/"):
        assert sample_only not in text
    assert SECRET not in text
    data = tomllib.loads(text)
    words = ("secret", "api_key", "password", "token")
    assert not [k for k in _keys(data) if any(w in k.lower() for w in words)]


def test_an_initialised_folder_collects_and_builds_once_it_has_feeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_CHECKS__SPAM", "off")  # SpamAssassin is slow; not the point here
    monkeypatch.setenv("DIGEST_CHECKS__LINKS", "off")  # the examples' hosts are made up
    folder = tmp_path / "org"
    _init(folder)
    config = str(folder / "config.toml")
    with time_machine.travel(NOW, tick=False):
        out = _digest("collect", "--config", config).output
        assert "no sources to fetch" in out and "[[sources.feeds]]" in out
        assert "no sources to fetch" in _digest("build", "--config", config).output
        with (folder / "config.toml").open("a") as fh:
            fh.write(FEEDS)
        out = _digest("collect", "--config", config).output
        assert "no sources to fetch" not in out
        assert "collected 4 sources" in out  # two feeds, the calendar, the notes folder
        out = _digest("build", "--config", config).output
    assert "no sources to fetch" not in out
    assert "edition 2026-W48: Riverside" in out
    assert (folder / "var" / "digest.db").is_file()
    assert (folder / "var" / "editions" / "2026-W48" / "email.html").is_file()


def test_init_never_overwrites_a_config(tmp_path: Path) -> None:
    folder = tmp_path / "org"
    _init(folder)
    before = (folder / "config.toml").read_bytes()
    result = _init(folder, code=1, **{"--name": "Someone Else"})
    assert len(result.output.strip().splitlines()) == 1
    assert "already exists" in result.output and "nothing changed" in result.output
    assert (folder / "config.toml").read_bytes() == before


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--timezone", "Mars/Olympus_Mons", "unknown timezone"),
        ("--from-email", "news-at-riverside", "not an email address"),
        ("--base-url", "ftp://digest.riverside.example.net", "http(s)"),
        ("--base-url", "http://digest.riverside.example.net", "must be https"),
        ("--website", "riverside.example.net", "http(s)"),
    ],
)
def test_a_bad_answer_is_refused_naming_its_flag_and_nothing_is_written(
    tmp_path: Path, flag: str, value: str, says: str
) -> None:
    result = _init(tmp_path / "org", code=1, **{flag: value})
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and says in lines[0], lines
    assert not (tmp_path / "org").exists()


def test_missing_flags_without_a_terminal_are_named(tmp_path: Path) -> None:
    result = _init(tmp_path / "org", code=1, **{"--website": None, "--base-url": None})
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "missing --website, --base-url" in lines[0], lines
    assert "--name" not in lines[0]
    assert not (tmp_path / "org").exists()


def test_at_a_terminal_the_missing_answers_are_asked_again_until_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("digest.init_project._at_terminal", lambda: True)
    answers = [
        "Eastside Books Through Bars",
        "PO Box 9, Eastside, OR 97201",
        "https://eastside.example.net",
        "Nowhere/Special",  # asked again
        "America/Chicago",
        "books@eastside.example.net",
        "https://news.eastside.example.net",
    ]
    folder = tmp_path / "org"
    out = _digest("init", str(folder), input="\n".join(answers) + "\n").output
    assert "unknown timezone" in out
    settings = load_settings(folder / "config.toml")
    assert settings.organisation.name == "Eastside Books Through Bars"
    assert settings.organisation.postal_address == "PO Box 9, Eastside, OR 97201"
    assert settings.organisation.timezone == "America/Chicago"
    assert settings.delivery.from_email == "books@eastside.example.net"
    assert settings.delivery.base_url == "https://news.eastside.example.net"


def test_lists_with_no_lists_says_what_to_add(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[organisation]\nname = "No Lists Yet"\n')
    out = _digest("lists", "--config", str(config)).output
    assert "no lists in config.toml" in out and "[[lists]]" in out
    assert _digest("lists", "--json", "--config", str(config)).output.strip() == "{}"


def test_a_filled_copy_of_the_template_imports(tmp_path: Path) -> None:
    folder = tmp_path / "org"
    _init(folder)
    filled = folder / "subscribers" / "you.csv"
    row = "ana@example.org,Ana,html,Pacific/Honolulu,,,,,,,,,\n"
    filled.write_text((folder / "subscribers" / "template.csv").read_text() + row)
    config = ["--config", str(folder / "config.toml")]
    _digest("subscribers", "import", str(filled), "--list", "weekly", *config)
    shown = _digest("subscribers", "show", "ana@example.org", *config).output
    assert "timezone: Pacific/Honolulu" in shown
