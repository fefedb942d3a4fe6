"""Mailing addresses of print members: imported from a CSV, shown by `subscribers show`
and on the console's page, corrected there; a half address is refused by its line."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from typer.testing import CliRunner

from digest.audience.importer import import_csv
from digest.cli import app
from digest.context import App
from digest.staff.users import add_user
from digest.store import audience as store
from digest.store.mailing import MailingAddress, address_of, set_address
from digest.store.tables import audit_log, mailing_addresses, subscribers
from tests.conftest import NOW, ROOT
from tests.console_setup import PASSWORD, STAFF
from tests.test_admin import _client, _csrf, _login

INSIDE = '\n[[lists]]\nslug = "inside"\nname = "Inside"\nkind = "print"\n'
GREEN_HAVEN = MailingAddress(
    inmate_id="24A1187",
    facility="Cedar Ridge Correctional Facility",
    unit="B-2",
    address1="1450 County Route 12",
    city="Millbrook Falls",
    state="NY",
    zip="12985",
)
HEADER = "email,name,inmate_id,facility,unit,address1,address2,city,state,zip\n"
ROW = "d@example.org,Darnell Okafor,24A1187,Cedar Ridge Correctional Facility,B-2,"
ROW += "1450 County Route 12,,Millbrook Falls,NY,12985\n"


def _project(make_project, monkeypatch, database_url: str | None = None):
    if database_url:
        monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)
    return make_project(INSIDE)


def _import(project, path: Path, list_slug: str = "inside", **kw):
    options = {"default_format": None, "pending": False, "dry_run": False, "now": NOW} | kw
    return import_csv(project.app(), path, list_slug=list_slug, **options)


def _write(tmp_path: Path, content: str, name: str = "inside.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8", newline="")
    return path


def _stored(project, email: str) -> MailingAddress | None:
    with project.engine().connect() as conn:
        sub = conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).one()
        return address_of(conn, sub.id)


def _count(project, table: sa.Table) -> int:
    with project.engine().connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _cli(project, *args: str):
    return CliRunner().invoke(app, [*args, "--config", str(project.config)])


@pytest.mark.parametrize(
    "header",
    [
        "E-mail,Full Name,Inmate Number,Institution,Housing Unit,Street Address,Address 2,"
        "Town,ST,Zip Code,Facility Profile",
        "email,name,DOC Number,Prison,Housing,Street,address 2,city,state,Postal Code,profile",
        "email,name,Prisoner ID,Facility Name,unit,Address 1,Address2,City,State,Postcode,"
        "facility profile",
    ],
)
def test_an_address_under_any_common_header_is_stored_and_shown(
    make_project, monkeypatch, tmp_path, header: str
) -> None:
    project = _project(make_project, monkeypatch)
    path = _write(
        tmp_path,
        f"{header}\n"
        "d@example.org,Darnell Okafor,24A1187,Cedar Ridge Correctional Facility,B-2,"
        "1450 County Route 12,,Millbrook Falls,NY,12985,default\n"
        "j@example.org,Jerome Castellanos,,,,,,,,,default\n",
    )
    report = _import(project, path)
    assert (report.added, len(report.rejected)) == (2, 0), list(report.rejected)
    assert _stored(project, "d@example.org") == GREEN_HAVEN
    assert _stored(project, "j@example.org") is None
    shown = _cli(project, "subscribers", "show", "d@example.org")
    assert shown.exit_code == 0, shown.output
    assert (
        "mailing_address: Darnell Okafor #24A1187 / Cedar Ridge Correctional Facility / B-2 / "
        "1450 County Route 12 / Millbrook Falls, NY 12985\n"
    ) in shown.output
    assert "lists: inside (active, print, default)" in shown.output  # the profile, not facility
    as_json = json.loads(_cli(project, "subscribers", "show", "d@example.org", "--json").output)
    assert as_json["mailing_address"] == {
        "inmate_id": "24A1187",
        "facility": "Cedar Ridge Correctional Facility",
        "unit": "B-2",
        "address1": "1450 County Route 12",
        "address2": "",
        "city": "Millbrook Falls",
        "state": "NY",
        "zip": "12985",
    }
    assert as_json["lists"][0]["profile"] == "default" and as_json["email"] == "d@example.org"
    nobody = json.loads(_cli(project, "subscribers", "show", "j@example.org", "--json").output)
    assert nobody["mailing_address"] is None
    assert "mailing_address: none" in _cli(project, "subscribers", "show", "j@example.org").output


def test_a_facility_is_the_address_not_the_print_profile(make_project, monkeypatch, tmp_path):
    """'facility' used to name the print profile; now it is the facility's name, so a file
    of the old shape is refused by line, not filed under a profile called 'default'."""
    project = _project(make_project, monkeypatch)
    report = _import(project, _write(tmp_path, "email,facility\na@example.org,default\n"))
    assert report.added == 0
    [(line, why)] = list(report.rejected)
    assert line == 2 and why.startswith("facility 'default' but no inmate_id,")


def test_a_half_address_is_refused_by_line_and_strict_writes_nothing(
    make_project, monkeypatch, tmp_path
) -> None:
    project = _project(make_project, monkeypatch)
    path = _write(
        tmp_path,
        HEADER + ROW + "g@example.org,Gil Marsh,,Green Haven CF,,594 Route 216,,Stormville,NY,"
        "12582\nh@example.org,Hal Brand,77B0001,Green Haven CF,,594 Route 216,,Stormville,NY,\n",
    )
    strict = _cli(project, "subscribers", "import", str(path), "--list", "inside", "--strict")
    assert strict.exit_code == 1
    assert (
        f"{path}:3: rejected: facility 'Green Haven CF' but no inmate_id: add the ID number, "
        "or leave the address columns empty"
    ) in strict.output
    assert f"{path}:4: rejected: inmate_id '77B0001' but no zip: add the ZIP code" in strict.output
    assert _count(project, subscribers) == 0 and _count(project, mailing_addresses) == 0
    dry = _cli(project, "subscribers", "import", str(path), "--list", "inside", "--dry-run")
    assert "dry run, nothing written: added 1" in dry.output
    assert _count(project, subscribers) == 0 and _count(project, mailing_addresses) == 0
    plain = _cli(project, "subscribers", "import", str(path), "--list", "inside")
    assert "added 1, updated 0, unchanged 0, rejected 2" in plain.output
    assert _stored(project, "d@example.org") == GREEN_HAVEN
    assert _count(project, mailing_addresses) == 1


def test_a_changed_address_counts_as_updated_and_a_missing_one_keeps_the_old(
    make_project, monkeypatch, tmp_path
) -> None:
    project = _project(make_project, monkeypatch)
    assert _import(project, _write(tmp_path, HEADER + ROW)).added == 1
    same = _import(project, _write(tmp_path, HEADER + ROW))
    assert (same.updated, same.unchanged) == (0, 1)
    moved = ROW.replace(",B-2,", ",C-7,")
    again = _import(project, _write(tmp_path, HEADER + moved))
    assert (again.updated, again.unchanged) == (1, 0)
    stored = _stored(project, "d@example.org")
    assert stored is not None and stored.unit == "C-7"
    bare = _import(project, _write(tmp_path, "email,name\nd@example.org,Darnell Okafor\n"))
    assert (bare.updated, bare.unchanged) == (0, 1)
    assert _stored(project, "d@example.org") == stored


def test_hostile_cells_are_refused_or_kept_as_text(
    make_project, monkeypatch, tmp_path, database_url: str
) -> None:
    project = _project(make_project, monkeypatch, database_url)
    huge = "x" * 10_000
    formula = '=HYPERLINK("https://evil.example/","click me")'
    path = _write(
        tmp_path,
        HEADER + f"a@example.org,A,1,{huge},,1 Main St,,Town,NY,12345\n"
        f"b@example.org,B,1,Green Haven,,1 Main St,,Town,NY,{'9' * 21}\n"
        f"c@example.org,C,{'7' * 61},Green Haven,,1 Main St,,Town,NY,12345\n"
        f"""d@example.org,D,2,"'{formula.replace('"', '""')}",,1 Main St,,Town,NY,12345\n"""
        # A NUL (PostgreSQL refuses it) past the first 4 KB, which the reader checks whole.
        'e@example.org,E,3,"Green\n  Haven\tCF\u200b",,"1 Main St\x00",,Town,NY,12345\n',
    )
    report = _import(project, path)
    problems = dict(report.rejected)
    assert problems[2] == "facility is 10000 characters long (at most 300): shorten it"
    assert problems[3] == "zip is 21 characters long (at most 20): shorten it"
    assert problems[4] == "inmate_id is 61 characters long (at most 60): shorten it"
    assert report.added == 2 and _count(project, mailing_addresses) == 2
    formulaic = _stored(project, "d@example.org")
    assert formulaic is not None and formulaic.facility == formula  # the export's quote undone
    spaced = _stored(project, "e@example.org")
    assert spaced is not None and (spaced.facility, spaced.address1) == (
        "Green Haven CF",
        "1 Main St",
    )


def test_address_columns_on_an_email_list_are_ignored(make_project, monkeypatch, tmp_path):
    """A CRM's export of email supporters (street, city, ZIP) imports as before: nobody is
    mailed paper who did not ask for print, and no row is refused for a missing ID."""
    project = _project(make_project, monkeypatch)
    path = _write(tmp_path, "email,address,city,zip\nsam@example.org,9 Elm St,Troy,12180\n")
    report = _import(project, path, list_slug="weekly")
    assert (report.added, len(report.rejected)) == (1, 0)
    assert _count(project, mailing_addresses) == 0


def test_the_sample_file_imports_six_people_at_three_facilities(make_project, monkeypatch):
    project = _project(make_project, monkeypatch)
    report = _import(project, ROOT / "subscribers" / "sample-mail-inside.csv")
    assert (report.added, len(report.rejected)) == (6, 0)
    with project.engine().connect() as conn:
        facilities = conn.execute(sa.select(mailing_addresses.c.facility).distinct()).scalars()
        assert len(set(facilities)) == 3
    assert _count(project, mailing_addresses) == 5  # one row left without an address


def test_thousands_of_addresses_go_in_a_few_statements(
    make_project, monkeypatch, tmp_path, database_url: str
) -> None:
    project = _project(make_project, monkeypatch, database_url)
    rows = "".join(
        f"p{i}@example.org,P {i},{i:08d},Cedar Ridge CF,,1450 County Route 12,,Millbrook,NY,"
        f"{12000 + i % 900}\n"
        for i in range(1201)
    )
    assert _import(project, _write(tmp_path, HEADER + rows)).added == 1201
    engine = project.engine()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    moved = rows.replace("Cedar Ridge CF", "Cedar Ridge Correctional Facility")
    report = import_csv(
        App(project.settings(), engine),
        _write(tmp_path, HEADER + moved),
        list_slug="inside",
        default_format=None,
        pending=False,
        dry_run=False,
        now=NOW,
    )
    assert (report.updated, report.unchanged) == (1201, 0)
    writes = [s for s in statements if "mailing_addresses" in s and not s.startswith("SELECT")]
    assert len(writes) <= 6, writes  # a DELETE and an INSERT per 500, not one per row
    with engine.connect() as conn:
        facilities = set(conn.execute(sa.select(mailing_addresses.c.facility)).scalars())
    assert facilities == {"Cedar Ridge Correctional Facility"}
    assert _count(project, mailing_addresses) == 1201


def _console(project):
    engine = project.engine()
    add_user(engine, STAFF, PASSWORD, who="test", now=NOW)
    client = _client(project.settings(), engine)
    assert _login(client).status_code == 303
    return client, engine


def _id(engine, email: str) -> int:
    with engine.connect() as conn:
        found = store.find_subscriber(conn, email)
    assert found is not None
    return int(found.id)


def test_the_console_shows_the_address_and_what_it_lacks(make_project, monkeypatch, tmp_path):
    project = _project(make_project, monkeypatch)
    hostile = ROW.replace(",B-2,", ",<script>alert(1)</script>,")
    _import(project, _write(tmp_path, HEADER + hostile + "j@example.org,Jerome,,,,,,,,\n"))
    client, engine = _console(project)
    darnell = client.get(f"/admin/subscribers/{_id(engine, 'd@example.org')}")
    assert darnell.status_code == 200
    text = darnell.text
    assert '<h2 id="mailing-address">Mailing address (for paper copies)</h2>' in text
    assert (
        "<dd>Darnell Okafor #24A1187<br>Cedar Ridge Correctional Facility<br>"
        "Unit &lt;script&gt;alert(1)&lt;/script&gt;<br>1450 County Route 12<br>"
        "Millbrook Falls, NY 12985</dd>"
    ) in text
    assert "<script>" not in text and "<dd>yes</dd>" in text
    jerome_id = _id(engine, "j@example.org")
    with engine.begin() as conn:  # as an older import or a typo might have left it
        set_address(conn, jerome_id, MailingAddress(inmate_id="5", facility="Ely SP"), now=NOW)
    jerome = client.get(f"/admin/subscribers/{jerome_id}").text
    assert (
        "no: missing Street address (address1), City (city), State (state), ZIP code (zip)"
    ) in jerome


def test_staff_correct_an_address_in_the_console(make_project, monkeypatch, tmp_path) -> None:
    project = _project(make_project, monkeypatch)
    _import(project, _write(tmp_path, HEADER + ROW))
    client, engine = _console(project)
    page = f"/admin/subscribers/{_id(engine, 'd@example.org')}"
    form = {"csrf": _csrf(client.get(page).text)} | GREEN_HAVEN.values() | {"unit": " C-7 "}
    assert client.post(page + "/address", data=form | {"csrf": "forged"}).status_code == 403
    half = client.post(page + "/address", data=form | {"inmate_id": ""})
    assert half.status_code == 400
    said = "address not saved: facility 'Cedar Ridge Correctional Facility' but no inmate_id"
    assert said in html.unescape(half.text)
    assert 'value="C-7"' in half.text  # what they typed stays in the form
    assert _stored(project, "d@example.org") == GREEN_HAVEN
    saved = client.post(page + "/address", data=form)
    assert saved.status_code == 303
    assert "mailing address saved" in client.get(saved.headers["location"]).text
    stored = _stored(project, "d@example.org")
    assert stored is not None and stored.unit == "C-7"
    empty = {"csrf": form["csrf"]} | dict.fromkeys(GREEN_HAVEN.values(), "")
    assert client.post(page + "/address", data=empty).status_code == 303
    assert _stored(project, "d@example.org") is None
    with engine.connect() as conn:
        logged = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.detail).where(
                audit_log.c.target == "d@example.org"
            )
        ).all()
    assert [tuple(r) for r in logged] == [
        ("subscriber changed", "mailing address saved"),
        ("subscriber changed", "mailing address removed"),
    ]
