"""Sections per reader: the edition rendered once per choice in use, each reader getting
theirs (HTML, text part, print), the cap on variants, the preferences page that sets it."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import html
import json
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
import time_machine
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from digest.audience.tokens import Keyring
from digest.cli import app
from digest.config import Secrets
from digest.context import App
from digest.dispatch.variants import choice_of, variant_chooser, with_choice
from digest.models import Recipient
from digest.render.templates import note_title
from digest.store import audience, editions
from digest.store.tables import batches, memberships
from digest.web.app import create_app
from tests.conftest import EXAMPLE_SOURCES, NOW

KEY = "test-secret-key-0123456789abcdef"
WEEK = "2026-W48"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "person.schema.json").read_text())
PRINT_LIST = """
[[lists]]
slug = "inside"
name = "Inside"
kind = "print"
"""


def _project(make_project, monkeypatch, extra: str = ""):
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    return make_project(EXAMPLE_SOURCES + PRINT_LIST + extra)


def _run(project, *args: str) -> str:
    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(app, [*args, "--config", str(project.config)])
    assert result.exit_code == 0, result.output
    return result.output


def _people(project, tmp_path: Path, rows: dict[str, tuple[str, str, str | None]]) -> None:
    """rows: email -> (list, format, chosen sections as stored, None: every one)."""
    for slug in {row[0] for row in rows.values()}:
        csv = tmp_path / f"{slug}.csv"
        lines = [f"{addr},{fmt}" for addr, (s, fmt, _) in rows.items() if s == slug]
        csv.write_text("email,format\n" + "\n".join(lines) + "\n")
        _run(project, "subscribers", "import", str(csv), "--list", slug)
    engine = project.engine()
    with engine.begin() as conn:
        for addr, (_, _, chosen) in rows.items():
            sub = audience.find_subscriber(conn, addr)
            assert sub is not None
            audience.set_sections(conn, sub.id, chosen.split(",") if chosen else None, now=NOW)


def _titles(project) -> dict[str, list[str]]:
    """Every item and event title of the built edition, by section (the note apart)."""
    with project.engine().connect() as conn:
        edition = editions.edition_of(conn, WEEK)
    assert edition is not None and edition.editor_note is not None
    found = {s.key: [x.title for x in (*s.items, *s.events)] for s in edition.sections}
    found["note"] = [note_title(edition.editor_note.title)]
    assert all(found.get(k) for k in ("news", "stories", "events")), found
    return found


def _messages(project) -> dict[str, EmailMessage]:
    folder = project.folder / "var" / "outbox" / WEEK
    out = {}
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out[msg["To"].addresses[0].addr_spec] = msg
    return out


def _part(msg: EmailMessage, kind: str) -> str:
    body = msg.get_body(preferencelist=(kind,))
    assert body is not None and body.get_content_type() == f"text/{kind}", kind
    return str(body.get_content())


def _words(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _shows(text: str, titles: list[str]) -> list[bool]:
    flat = _words(text)
    return [_words(t) in flat for t in titles]


def _pdf_text(msg: EmailMessage) -> str:
    pdfs = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    data = pdfs[0].get_content()
    done = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
    return done.stdout.decode()


def _variants(project) -> dict[str, str]:
    """Each recipient's variant in the ledger."""
    with project.engine().connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.email, b.variant FROM send_recipients r "
                "JOIN batches b ON b.id = r.batch_id"
            )
        )
        return dict(rows.all())


def test_events_only_is_the_note_and_events_in_html_text_and_print(
    make_project, monkeypatch, tmp_path: Path
) -> None:
    project = _project(make_project, monkeypatch)
    _people(
        project,
        tmp_path,
        {
            "ana@example.org": ("weekly", "html", "events"),
            "bo@example.org": ("weekly", "text", "events"),
            "cy@example.org": ("inside", "print", "events"),
            "dee@example.org": ("weekly", "html", None),
            "eve@example.org": ("inside", "print", None),
        },
    )
    _run(project, "collect")
    _run(project, "build")
    _run(project, "send", "--yes")
    titles = _titles(project)
    gone = titles["news"] + titles["stories"]
    kept = titles["note"] + titles["events"]
    messages = _messages(project)
    ana, bo = messages["ana@example.org"], messages["bo@example.org"]
    for part in (_part(ana, "html"), _part(ana, "plain"), _part(bo, "plain")):
        assert all(_shows(part, kept)) and not any(_shows(part, gone))
        assert "PO Box 1, Testville" in part  # the footer, as in every email
    assert bo.get_body(preferencelist=("html",)) is None  # text only, as they asked
    assert "/u/" in _part(ana, "html") and "/u/" in _part(bo, "plain")
    for part in (_part(ana, "html"), _part(bo, "plain")):
        assert "You get the editor's note and Events, as you asked." in _words(part)
    whole = _part(messages["dee@example.org"], "html")
    assert all(_shows(whole, gone + kept))  # the whole edition holds what the choice left out
    assert "as you asked" not in whole
    printed = _pdf_text(messages["cy@example.org"])
    assert all(_shows(printed, titles["note"] + titles["events"][:1]))
    assert not any(_shows(printed, gone))
    assert any(_shows(_pdf_text(messages["eve@example.org"]), gone))
    assert _variants(project) == {
        "ana@example.org": "html~events",
        "bo@example.org": "text~events",
        "cy@example.org": "print:default~events",
        "dee@example.org": "html",
        "eve@example.org": "print:default",
    }


def test_three_choices_three_variants_each_reader_gets_theirs(
    make_project, monkeypatch, tmp_path: Path
) -> None:
    project = _project(make_project, monkeypatch)
    _people(
        project,
        tmp_path,
        {
            "ana@example.org": ("weekly", "html", "events"),
            "bo@example.org": ("weekly", "html", "news"),
            "cy@example.org": ("weekly", "text", "events,news"),
            "dan@example.org": ("weekly", "html", "news"),
            "dee@example.org": ("weekly", "html", "news,stories,events"),  # every one: whole
        },
    )
    _run(project, "collect")
    built = _run(project, "build")
    assert "sections news: 2 reader(s)" in built and "sections events: 1 reader(s)" in built
    with project.engine().connect() as conn:
        stored = editions.variant_files(conn, WEEK)
        whole = [f.filename for f in editions.get_files(conn, WEEK)]
    assert sorted(stored) == ["events", "events+news", "news"]
    # The console and print-run see the whole edition's files, as before.
    assert "print-default.pdf" in whole and not any("/" in name for name in whole)
    _run(project, "send", "--yes")
    titles = _titles(project)
    messages = _messages(project)
    wants = {
        "ana@example.org": {"events"},
        "bo@example.org": {"news"},
        "cy@example.org": {"events", "news"},
        "dan@example.org": {"news"},
        "dee@example.org": {"news", "stories", "events"},
    }
    for addr, keys in wants.items():
        body = _part(messages[addr], "plain")
        for key in ("news", "stories", "events"):
            assert all(_shows(body, titles[key])) is (key in keys), (addr, key)
            assert any(_shows(body, titles[key])) is (key in keys), (addr, key)
        assert all(_shows(body, titles["note"])), addr
    assert _part(messages["bo@example.org"], "html") != _part(messages["ana@example.org"], "html")
    assert "the editor's note and News and Events," in _words(
        _part(messages["cy@example.org"], "plain")
    )
    assert _variants(project) == {
        "ana@example.org": "html~events",
        "bo@example.org": "html~news",
        "cy@example.org": "text~events+news",
        "dan@example.org": "html~news",
        "dee@example.org": "html",
    }


def test_past_the_cap_readers_get_the_whole_edition_and_build_says_so(
    make_project, monkeypatch, tmp_path: Path
) -> None:
    project = _project(make_project, monkeypatch, "\n[edition]\nmax_section_variants = 1\n")
    _people(
        project,
        tmp_path,
        {
            "ana@example.org": ("weekly", "html", "events"),
            "bo@example.org": ("weekly", "html", "events"),
            "cy@example.org": ("weekly", "html", "news"),
            "dan@example.org": ("weekly", "text", "stories"),
        },
    )
    _run(project, "collect")
    built = _run(project, "build")
    assert "2 reader(s) get the whole edition" in built
    assert "edition.max_section_variants = 1" in built
    with project.engine().connect() as conn:
        assert sorted(editions.variant_files(conn, WEEK)) == ["events"]
    _run(project, "send", "--yes")
    titles = _titles(project)
    messages = _messages(project)
    assert not any(_shows(_part(messages["ana@example.org"], "html"), titles["news"]))
    for addr in ("cy@example.org", "dan@example.org"):
        body = _part(messages[addr], "plain")
        assert all(_shows(body, titles["news"] + titles["stories"] + titles["events"]))
    assert _variants(project) == {
        "ana@example.org": "html~events",
        "bo@example.org": "html~events",
        "cy@example.org": "html",
        "dan@example.org": "text",
    }


def test_a_choice_of_an_empty_section_still_gets_the_note_and_the_footer(
    make_project, monkeypatch, tmp_path: Path
) -> None:
    extra = '\n[edition]\nsections = ["news", "stories", "events", "letters"]\n'
    project = _project(make_project, monkeypatch, extra)
    _people(project, tmp_path, {"ana@example.org": ("weekly", "html", "letters")})
    _run(project, "collect")
    _run(project, "build")
    _run(project, "send", "--yes")
    titles = _titles(project)
    msg = _messages(project)["ana@example.org"]
    for part in (_part(msg, "html"), _part(msg, "plain")):
        assert all(_shows(part, titles["note"]))
        assert not any(_shows(part, titles["news"] + titles["stories"] + titles["events"]))
        assert "PO Box 1, Testville" in part and "/u/" in part and "/p/" in part
    assert msg["List-Unsubscribe"]
    assert _variants(project) == {"ana@example.org": "html~letters"}


def test_alerts_ignore_sections_and_an_unrendered_choice_gets_the_whole(make_project) -> None:
    project = make_project()
    settings = project.settings()
    engine = project.engine()
    editions_store = editions
    alert = editions_store.StoredEdition(
        "alert-1",
        "s",
        NOW,
        1,
        None,
        NOW,
        "alert",
        "built",  # type: ignore[arg-type]
    )
    weekly = editions_store.StoredEdition(
        WEEK,
        "s",
        NOW,
        1,
        None,
        NOW,
        "weekly",
        "built",  # type: ignore[arg-type]
    )
    reader = Recipient(1, "a@example.org", "A", sections=("events",))
    with engine.connect() as conn:
        assert variant_chooser(settings, conn, alert)(reader) == "html"
        assert variant_chooser(settings, conn, weekly)(reader) == "html"  # nothing rendered
    assert choice_of(settings, ("events", "gone")) == {"events"}
    assert choice_of(settings, ("events", "news", "stories")) is None
    assert choice_of(settings, ()) is None
    assert with_choice("print:inside", frozenset({"news", "events"})) == "print:inside~events+news"


def _client(project) -> TestClient:
    ctx = App(project.settings(), project.engine(), Secrets(secret_key=KEY))
    ctx.clock = lambda: NOW
    return TestClient(create_app(ctx))


def _stored(project) -> list[str | None]:
    with project.engine().connect() as conn:
        return list(conn.execute(sa.select(memberships.c.sections)).scalars())


def test_preferences_page_sets_sections_refuses_none_and_all_is_null(
    make_project, monkeypatch, tmp_path: Path
) -> None:
    project = _project(make_project, monkeypatch)
    _people(project, tmp_path, {"bo@example.org": ("weekly", "html", None)})
    client = _client(project)
    token = Keyring(KEY.encode()).make("preferences", 1, "weekly", now=NOW)
    page = client.get(f"/p/{token}")
    assert page.status_code == 200
    assert "<legend>Which parts do you want?</legend>" in page.text
    assert "editor's note always comes" in html.unescape(page.text)
    for key in ("news", "stories", "events"):
        assert f'name="section" value="{key}" checked' in page.text

    def post(body: str):
        return client.post(
            f"/p/{token}",
            content=f"list=weekly&format=html&sections_shown=1{body}&action=save",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

    assert post("&section=events&section=news").status_code == 200
    assert _stored(project) == ["events,news"]
    page = client.get(f"/p/{token}").text
    assert 'value="events" checked' in page and 'value="stories" checked' not in page
    refused = post("")
    assert refused.status_code == 400 and "at least one part" in refused.text
    assert _stored(project) == ["events,news"]
    assert post("&section=news&section=stories&section=events").status_code == 200
    assert _stored(project) == [None]
    old_form = client.post(  # a form without the fieldset leaves the choice alone
        f"/p/{token}",
        content="list=weekly&format=text&action=save",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert old_form.status_code == 200 and _stored(project) == [None]


def test_export_person_shows_the_sections(make_project, monkeypatch, tmp_path: Path) -> None:
    project = _project(make_project, monkeypatch)
    _people(project, tmp_path, {"bo@example.org": ("weekly", "html", "events,news")})
    found = json.loads(_run(project, "subscribers", "export-person", "bo@example.org"))
    jsonschema.validate(found, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert [m["sections"] for m in found["memberships"]] == [["events", "news"]]


def test_batches_carry_the_choice(make_project, monkeypatch, tmp_path: Path) -> None:
    """The ledger's batches are cut per variant: one choice never shares a batch."""
    project = _project(make_project, monkeypatch)
    _people(
        project,
        tmp_path,
        {
            "ana@example.org": ("weekly", "html", "events"),
            "bo@example.org": ("weekly", "html", None),
        },
    )
    _run(project, "collect")
    _run(project, "build")
    _run(project, "send", "--yes")
    with project.engine().connect() as conn:
        found = sorted(conn.execute(sa.select(batches.c.variant)).scalars())
        assert found == ["html", "html~events"]
        stored = editions.get_edition(conn, WEEK)
        assert stored is not None
        reader = Recipient(9, "new@example.org", "New", sections=("events",))
        assert variant_chooser(project.settings(), conn, stored)(reader) == "html~events"
        # Only the weekly kind has sections: an alert (or welcome) goes whole.
        for kind in ("alert", "welcome"):
            as_other = dataclasses.replace(stored, kind=kind)
            assert variant_chooser(project.settings(), conn, as_other)(reader) == "html"
