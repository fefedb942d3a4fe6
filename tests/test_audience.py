"""Importing subscribers from CSV, and the signed tokens in every email."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from digest.audience.importer import import_csv
from digest.audience.tokens import check_token, make_token, signing_key
from digest.cli import app
from digest.errors import AudienceError, ConfigError
from digest.store.tables import memberships, subscribers
from tests.conftest import NOW


def _import(project, path: Path, **kw):
    options = {
        "list_slug": "weekly",
        "default_format": "html",
        "pending": False,
        "dry_run": False,
        "now": NOW,
    } | kw
    return import_csv(project.settings(), project.engine(), path, **options)


def _emails(project) -> list[str]:
    with project.engine().connect() as conn:
        return list(
            conn.execute(sa.select(subscribers.c.email).order_by(subscribers.c.id)).scalars()
        )


def test_import_merges_case_and_whitespace_and_reports_bad_rows(make_project, tmp_path) -> None:
    project = make_project()
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(
        "E-mail;First Name;Last Name\r\n"
        " Ana@Example.org ;Ana;Lima\r\n"
        "ana@example.org;Ana;Again\r\n"
        "not-an-address;X;Y\r\n"
        "bo@example.org;Bo;\r\n",
        encoding="utf-8-sig",
    )
    report = _import(project, csv_file)
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    assert [line for line, _ in report.rejected] == [3, 4]
    assert _emails(project) == ["Ana@example.org", "bo@example.org"]
    again = _import(project, csv_file)
    assert (again.added, again.unchanged) == (0, 2)


def test_cp1252_files_and_tab_delimiters_are_read(make_project, tmp_path: Path) -> None:
    project = make_project()
    csv_file = tmp_path / "list.tsv"
    csv_file.write_bytes(
        "email\tname\tformat\nzoe@example.org\tZoë Müller\ttext\n".encode("cp1252")
    )
    report = _import(project, csv_file)
    assert report.added == 1
    with project.engine().connect() as conn:
        row = conn.execute(sa.select(subscribers)).one()
    assert (row.name, row.format) == ("Zoë Müller", "text")


def test_dry_run_writes_nothing(make_project, tmp_path: Path) -> None:
    project = make_project()
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("email\na@example.org\n")
    assert _import(project, csv_file, dry_run=True).added == 1
    assert _emails(project) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary", "not a text file"),
        (b"a@example.org,Ann\n", "no email column"),
    ],
)
def test_unreadable_files_are_one_clear_error(make_project, tmp_path, content, message) -> None:
    project = make_project()
    csv_file = tmp_path / "bad.csv"
    csv_file.write_bytes(content)
    with pytest.raises(AudienceError, match=message):
        _import(project, csv_file)


def test_unknown_list_is_refused(make_project, tmp_path: Path) -> None:
    project = make_project()
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("email\na@example.org\n")
    with pytest.raises(ConfigError, match="no list 'nope'"):
        _import(project, csv_file, list_slug="nope")


def test_cli_import_lists_rejected_lines_and_strict_writes_nothing(make_project, tmp_path) -> None:
    project = make_project()
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("email,name\na@example.org,A\nbroken,B\n")
    runner = CliRunner()
    strict = runner.invoke(
        app,
        [
            "subscribers",
            "import",
            str(csv_file),
            "--list",
            "weekly",
            "--strict",
            "--config",
            str(project.config),
        ],
    )
    assert strict.exit_code == 1
    assert f"{csv_file}:3" in strict.output
    assert _emails(project) == []
    plain = runner.invoke(
        app,
        [
            "subscribers",
            "import",
            str(csv_file),
            "--list",
            "weekly",
            "--config",
            str(project.config),
        ],
    )
    assert plain.exit_code == 0, plain.output
    assert "added 1" in plain.output and "rejected 1" in plain.output
    with project.engine().connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(memberships)).scalar() == 1


def test_tokens_are_bound_to_purpose_and_refuse_tampering() -> None:
    key = b"k" * 32
    token = make_token(key, "unsubscribe", 42, "weekly")
    claims = check_token(key, token, "unsubscribe")
    assert claims is not None and (claims.subscriber_id, claims.list_slug) == (42, "weekly")
    assert check_token(key, token, "preferences") is None
    assert check_token(b"other" * 8, token, "unsubscribe") is None
    assert check_token(key, token[:-2], "unsubscribe") is None
    forged = make_token(key, "unsubscribe", 43, "weekly").split(".")[0] + "." + token.split(".")[1]
    assert check_token(key, forged, "unsubscribe") is None


def test_signing_key_comes_from_the_environment_or_var(tmp_path: Path) -> None:
    assert signing_key("from-env", tmp_path, may_create=False) == b"from-env"
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY"):
        signing_key(None, tmp_path, may_create=False)
    made = signing_key(None, tmp_path, may_create=True)
    assert len(made) >= 32 and signing_key(None, tmp_path, may_create=False) == made
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
