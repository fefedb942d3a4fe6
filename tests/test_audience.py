"""Importing and exporting subscribers: every CSV shape staff bring, nothing lost or revived."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from digest.audience.export import export_csv
from digest.audience.importer import import_csv
from digest.cli import app
from digest.errors import AudienceError, ConfigError
from digest.store import audience as store
from digest.store.tables import memberships, subscribers, suppressions
from tests.conftest import NOW


def _import(project, path: Path, **kw):
    options = {
        "list_slug": "weekly",
        "default_format": None,
        "pending": False,
        "dry_run": False,
        "now": NOW,
    } | kw
    return import_csv(project.app(), path, **options)


def _export(project, **kw) -> str:
    out = io.StringIO()
    export_csv(project.app(), out, **({"list_slug": None, "status": None} | kw))
    return out.getvalue()


def _snapshot(project) -> list[tuple]:
    with project.engine().connect() as conn:
        return [
            tuple(conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all())
            for t in (subscribers, memberships, suppressions)
        ]


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def test_aliases_bom_crlf_semicolons_and_a_summary(make_project, tmp_path) -> None:
    project = make_project()
    path = _write(
        tmp_path,
        "list.csv",
        "\ufeffE-mail;First Name;Last Name\r\n"
        " Ana@Example.org ;Ana;Lima\r\n"
        "ana@example.org;Ana;Again\r\n"
        "not-an-address;X;Y\r\n"
        "bo@example.org;Bo;\r\n",
    )
    report = _import(project, path)
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    assert [line for line, _ in report.rejected] == [4]
    assert [line for line, _ in report.merged] == [3]
    details = (
        project.engine()
        .connect()
        .execute(sa.select(subscribers.c.email, subscribers.c.name).order_by(subscribers.c.id))
        .all()
    )
    assert details == [("Ana@Example.org", "Ana Lima"), ("bo@example.org", "Bo")]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_are_sniffed(make_project, tmp_path, delimiter: str) -> None:
    project = make_project()
    text = (
        delimiter.join(["email address", "name"])
        + "\n"
        + delimiter.join(["cy@example.org", "Cy Twombly"])
        + "\n"
    )
    assert _import(project, _write(tmp_path, "l.csv", text)).added == 1


def test_cp1252_is_read_when_the_file_is_not_utf8(make_project, tmp_path) -> None:
    project = make_project()
    path = _write(
        tmp_path, "l.csv", "email,name,format\nzoe@example.org,Zoë Müller,text\n".encode("cp1252")
    )
    assert _import(project, path).added == 1
    with project.engine().connect() as conn:
        assert conn.execute(sa.select(subscribers.c.name)).scalar() == "Zoë Müller"
        assert conn.execute(sa.select(memberships.c.format)).scalar() == "text"


def test_reimport_merges_case_and_whitespace_and_updates_names(make_project, tmp_path) -> None:
    project = make_project()
    _import(project, _write(tmp_path, "a.csv", "email,name\nana@example.org,Ana\n"))
    report = _import(
        project, _write(tmp_path, "b.csv", "email,name\n  ANA@example.ORG ,Ana Lima\n")
    )
    assert (report.added, report.updated) == (0, 1)
    assert _import(project, _write(tmp_path, "c.csv", "email\nana@example.org\n")).unchanged == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"\x00\x01\x02\x03binary", "not a text file"),
        (b"a@example.org,Ann\nb@example.org,Bo\n", "no email column"),
    ],
)
def test_unreadable_files_are_one_clear_error(make_project, tmp_path, content, message) -> None:
    project = make_project()
    with pytest.raises(AudienceError, match=message):
        _import(project, _write(tmp_path, "bad.csv", content))


def test_dry_run_writes_nothing(make_project, tmp_path) -> None:
    project = make_project()
    before = _snapshot(project)
    report = _import(project, _write(tmp_path, "l.csv", "email\na@example.org\n"), dry_run=True)
    assert report.added == 1 and not report.written
    assert _snapshot(project) == before


def test_unsubscribed_and_suppressed_addresses_stay_out(make_project, tmp_path) -> None:
    project = make_project()
    _import(project, _write(tmp_path, "a.csv", "email\nleft@example.org\nstays@example.org\n"))
    engine = project.engine()
    with engine.begin() as conn:
        store.update_membership(conn, 1, "weekly", status="unsubscribed")
        store.suppress(
            conn,
            "bounced@example.org",
            "bounced@example.org",
            reason="bounce",
            origin="sendgrid",
            now=NOW,
        )
    report = _import(
        project, _write(tmp_path, "b.csv", "email\nLEFT@example.org\nbounced@example.org\n")
    )
    assert report.added == 0
    assert [line for line, _ in report.suppressed] == [2, 3]
    assert "bounce" in report.suppressed[1][1]
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(memberships.c.status).where(memberships.c.subscriber_id == 1)
            ).scalar()
            == "unsubscribed"
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(subscribers)).scalar() == 2
        recipients = [r.email for r in store.recipients_for(conn, ["weekly"])]
    assert recipients == ["stays@example.org"]


def test_an_import_killed_halfway_leaves_the_database_as_it_was(
    make_project, tmp_path, monkeypatch
) -> None:
    project = make_project()
    _import(project, _write(tmp_path, "a.csv", "email,name\nold@example.org,Old\n"))
    before = _snapshot(project)

    def crash(*_args, **_kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "add_memberships", crash)
    with pytest.raises(RuntimeError):
        _import(
            project,
            _write(tmp_path, "b.csv", "email,name\nold@example.org,Renamed\nnew@example.org,New\n"),
        )
    assert _snapshot(project) == before


def test_formula_cells_are_escaped_on_export_and_restored_on_import(make_project, tmp_path) -> None:
    project = make_project()
    hostile = [
        ("=cmd@example.org", '=HYPERLINK("http://evil.example","x")'),
        ("plus@example.org", "+1 555"),
        ("minus@example.org", "-2+3"),
        ("at@example.org", "@SUM(A1)"),
        ("tab@example.org", "\tTab"),
    ]
    rows = "".join(f'{e},"{n.replace(chr(34), chr(34) * 2)}"\n' for e, n in hostile)
    _import(project, _write(tmp_path, "h.csv", "email,name\n" + rows))
    exported = _export(project, list_slug="weekly")
    for cells in list(csv.reader(io.StringIO(exported)))[1:]:
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells), cells
    before = _snapshot(project)
    again = _import(project, _write(tmp_path, "export.csv", exported))
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(hostile))
    assert _snapshot(project) == before


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_name_stored_with_a_formula_start_is_quoted_in_the_export(
    make_project, tmp_path, start: str
) -> None:
    """The importer strips cells, so a tab or CR can only come from elsewhere (a sign-up,
    an older version): the export must still quote it."""
    project = make_project()
    _import(project, _write(tmp_path, "a.csv", "email,name\na@example.org,A\n"))
    with project.engine().begin() as conn:
        store.update_subscriber(conn, 1, name=f"{start}1+1")
    exported = io.StringIO(_export(project, list_slug="weekly"), newline="")
    [row] = list(csv.reader(exported))[1:]
    assert row[1] == f"'{start}1+1"


def test_export_columns_filters_and_round_trip(make_project, tmp_path) -> None:
    project = make_project('[[lists]]\nslug = "alerts"\nname = "Alerts"\nkind = "alerts"\n')
    _import(
        project,
        _write(
            tmp_path, "a.csv", "email,name,format\na@example.org,A,text\nb@example.org,B,html\n"
        ),
    )
    _import(
        project,
        _write(tmp_path, "b.csv", "email\nb@example.org\n"),
        list_slug="alerts",
        pending=True,
    )
    with project.engine().begin() as conn:
        store.update_subscriber(conn, 1, status="bounced")
    lines = _export(project).splitlines()
    assert lines[0] == "email,name,status,lists,format,created"
    assert lines[1].startswith("a@example.org,A,bounced,weekly,text,")
    assert lines[2].startswith("b@example.org,B,active,alerts weekly,")
    assert len(_export(project, status="bounced").splitlines()) == 2
    assert len(_export(project, list_slug="alerts").splitlines()) == 2
    with pytest.raises(AudienceError, match="--status"):
        _export(project, status="gone")


def test_unknown_list_is_refused(make_project, tmp_path) -> None:
    project = make_project()
    with pytest.raises(ConfigError, match="no list 'nope'"):
        _import(project, _write(tmp_path, "l.csv", "email\na@example.org\n"), list_slug="nope")


def test_print_members_get_a_profile_and_bad_profiles_are_rejected(make_project, tmp_path) -> None:
    project = make_project('[[lists]]\nslug = "inside"\nname = "Inside"\nkind = "print"\n')
    path = _write(
        tmp_path, "p.csv", "email,name,profile\nc@example.org,C,default\nd@example.org,D,nowhere\n"
    )
    report = _import(project, path, list_slug="inside")
    assert report.added == 1 and report.rejected[0][0] == 3
    with project.engine().connect() as conn:
        member = conn.execute(sa.select(memberships)).one()
    assert (member.format, member.profile) == ("print", "default")


def test_cli_import_reports_lines_and_strict_writes_nothing(make_project, tmp_path) -> None:
    project = make_project()
    path = _write(tmp_path, "l.csv", "email,name\na@example.org,A\nbroken,B\n")
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    strict = runner.invoke(
        app, ["subscribers", "import", str(path), "--list", "weekly", "--strict", *cfg]
    )
    assert strict.exit_code == 1 and f"{path}:3: rejected" in strict.output
    assert _snapshot(project)[0] == ()
    plain = runner.invoke(app, ["subscribers", "import", str(path), "--list", "weekly", *cfg])
    assert plain.exit_code == 0, plain.output
    assert "added 1, updated 0, unchanged 0, rejected 1, suppressed 0" in plain.output


def test_cli_add_show_remove_and_lists(make_project, tmp_path) -> None:
    project = make_project()
    runner = CliRunner()
    cfg = ["--config", str(project.config)]

    def digest(*args: str):
        return runner.invoke(app, [*args, *cfg])

    assert (
        digest(
            "subscribers", "add", "Eve@Example.org", "--list", "weekly", "--name", "Eve"
        ).exit_code
        == 0
    )
    shown = digest("subscribers", "show", "eve@example.org")
    assert "status: active" in shown.output and "lists: weekly (active, html)" in shown.output
    assert "weekly (digest, Weekly): 1 active" in digest("lists").output
    removed = digest("subscribers", "remove", "eve@example.org")
    assert removed.exit_code == 0 and "suppressed" in removed.output
    again = digest("subscribers", "add", "eve@example.org", "--list", "weekly")
    assert again.exit_code == 1 and "--resubscribe" in again.output
    import json

    info = json.loads(digest("subscribers", "show", "eve@example.org", "--json").output)
    assert info["status"] == "unsubscribed" and info["suppressed"]["reason"] == "staff"
    back = digest("subscribers", "add", "eve@example.org", "--list", "weekly", "--resubscribe")
    assert back.exit_code == 0
    assert digest("subscribers", "show", "nobody@example.org").exit_code == 1


def test_cli_export_writes_to_a_file_or_stdout(make_project, tmp_path) -> None:
    project = make_project()
    _import(project, _write(tmp_path, "a.csv", "email\na@example.org\n"))
    runner = CliRunner()
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["subscribers", "export", "--out", str(out), "--config", str(project.config)]
    )
    assert result.exit_code == 0
    assert out.read_text().splitlines()[1].startswith("a@example.org,")
    stdout = runner.invoke(app, ["subscribers", "export", "--config", str(project.config)])
    assert "a@example.org" in stdout.stdout


def test_staff_cannot_quietly_put_back_someone_who_left_a_list(make_project, tmp_path) -> None:
    project = make_project()
    runner = CliRunner()
    cfg = ["--config", str(project.config)]
    _import(project, _write(tmp_path, "a.csv", "email\nfay@example.org\n"))
    assert (
        runner.invoke(
            app, ["subscribers", "remove", "fay@example.org", "--list", "weekly", *cfg]
        ).exit_code
        == 0
    )
    refused = runner.invoke(
        app, ["subscribers", "add", "fay@example.org", "--list", "weekly", *cfg]
    )
    assert refused.exit_code == 1 and "unsubscribed from weekly" in refused.output
    assert (
        runner.invoke(
            app,
            ["subscribers", "add", "fay@example.org", "--list", "weekly", "--resubscribe", *cfg],
        ).exit_code
        == 0
    )
