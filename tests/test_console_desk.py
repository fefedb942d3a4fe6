"""The console as the editorial desk: what staff do there without a terminal."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from digest.audience.members import details
from digest.store import editions
from digest.store.tables import audit_log, batches, items, subscribers
from tests.conftest import NOW, import_people
from tests.console_setup import STAFF, WEEK
from tests.test_admin import _audit, _logged_in, console  # noqa: F401 - the fixture


def test_a_test_copy_of_the_weekly_edition_goes_to_one_address(console) -> None:  # noqa: F811
    project, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    page = client.get(f"/admin/editions/{WEEK}")
    assert 'name="test_to"' in page.text and f'value="{STAFF}"' in page.text
    done = client.post(
        f"/admin/editions/{WEEK}/test", data={"csrf": csrf, "test_to": "editor@example.org"}
    )
    assert done.status_code == 200 and "Test sent to editor@example.org." in done.text
    [copy] = (project.folder / "var" / "outbox" / "test").glob("*.eml")
    assert "Subject: [TEST] " in copy.read_text()
    assert (STAFF, "test sent", WEEK) in _audit(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar() == 0
        assert editions.state_of(conn, WEEK) == "awaiting_approval"  # nothing else moved
    wrong = client.post(f"/admin/editions/{WEEK}/test", data={"csrf": csrf, "test_to": "nope"})
    assert wrong.status_code == 400 and "is not an email address" in wrong.text


def test_an_alert_is_scheduled_from_the_console_and_cancelled(console) -> None:  # noqa: F811
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    zone = settings.organisation.zone
    when = (datetime.now(zone) + timedelta(days=1)).replace(second=0, microsecond=0)
    form = {
        "csrf": csrf,
        "subject": "Rally tomorrow",
        "body": "Meet at the courthouse.",
        "list": "alerts",
        "send_at": when.strftime("%Y-%m-%dT%H:%M"),
    }
    asked = client.post("/admin/alerts", data={**form, "action": "send"})
    assert f"on {when:%A %d %B %Y at %H:%M %Z}?" in asked.text
    assert "Yes, schedule it" in asked.text
    chosen = re.search(r'name="alert" value="(alert-[0-9-]+)"', asked.text)[1]  # type: ignore[index]
    done = client.post("/admin/alerts", data={**form, "action": "confirm", "alert": chosen})
    assert done.status_code == 303 and done.headers["location"] == f"/admin/editions/{chosen}"
    page = client.get(f"/admin/editions/{chosen}").text
    assert f"to go {when:%A %d %B %Y at %H:%M %Z}" in page and "Cancel this send" in page
    with engine.connect() as conn:
        stored = editions.get_edition(conn, chosen)
    assert stored is not None and stored.state == "scheduled" and stored.send_at == when
    cancelled = client.post(f"/admin/editions/{chosen}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 303
    with engine.connect() as conn:
        assert editions.state_of(conn, chosen) == "cancelled"
    assert (STAFF, "alert scheduled", chosen) in _audit(engine)
    past = {**form, "send_at": (when - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}
    refused = client.post("/admin/alerts", data={**past, "action": "send"})
    assert (
        refused.status_code == 400 and "Send at" in refused.text and "in the past" in refused.text
    )


def _people(project, count: int) -> None:
    people = project.folder / "many.csv"
    people.write_text(
        "email,name\n" + "".join(f"p{i:03d}@example.org,P {i}\n" for i in range(count))
    )
    import_people(project.settings(), project.engine(), people)


def test_staff_page_through_any_number_and_filter_bounced(console) -> None:  # noqa: F811
    project, settings, engine = console
    _people(project, 120)
    with engine.begin() as conn:
        conn.execute(
            sa.update(subscribers)
            .where(subscribers.c.email.in_(["p007@example.org", "p099@example.org"]))
            .values(status="bounced")
        )
    client, _ = _logged_in(settings, engine)
    seen: list[str] = []
    page = client.get("/admin/subscribers")
    while True:
        seen += re.findall(r'<a href="/admin/subscribers/\d+">([^<]+)</a>', page.text)
        found = re.search(r'<a href="/admin/subscribers(\?[^"]+)" rel="next">', page.text)
        if not found:
            break
        page = client.get("/admin/subscribers" + found[1].replace("&amp;", "&"))
    assert len(seen) == len(set(seen)) == 122  # Ana, Bo and the 120, each once
    assert seen[0] == "p119@example.org"  # newest first
    bounced = client.get("/admin/subscribers", params={"status": "bounced"}).text
    assert re.findall(r'subscribers/\d+">([^<]+)</a>', bounced) == [
        "p099@example.org",
        "p007@example.org",
    ]
    csv = client.get("/admin/subscribers.csv", params={"status": "bounced", "q": "p09"})
    assert [line.split(",")[0] for line in csv.text.splitlines()[1:]] == ["p099@example.org"]


def test_staff_add_someone_at_once_or_with_a_confirmation(console) -> None:  # noqa: F811
    project, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    done = client.post(
        "/admin/subscribers/add",
        data={"csrf": csrf, "email": "Cy@Example.org", "name": "Cy", "list": "weekly"},
    )
    assert done.status_code == 200 and "Added Cy@Example.org to weekly (active" in done.text
    assert details(engine, "cy@example.org").status == "active"
    asked = client.post(
        "/admin/subscribers/add",
        data={
            "csrf": csrf,
            "email": "dee@example.org",
            "list": "alerts",
            "format": "text",
            "confirm_first": "on",
        },
    )
    assert "Asked dee@example.org to confirm alerts" in asked.text
    info = details(engine, "dee@example.org")
    assert info.status == "pending" and info.source == f"invited by {STAFF}"
    [eml] = (project.folder / "var" / "outbox" / "confirm").glob("*dee@example.org.eml")
    assert "Action alerts as plain-text email" in " ".join(eml.read_text().split())
    bad = client.post(
        "/admin/subscribers/add", data={"csrf": csrf, "email": "nope", "list": "weekly"}
    )
    assert bad.status_code == 400 and "is not an email address" in bad.text
    assert 'value="nope"' in bad.text  # what they typed is kept
    added = [a for w, a, t in _audit(engine) if a == "subscriber added"]
    assert len(added) == 2


def _person_id(client, address: str) -> str:
    page = client.get("/admin/subscribers", params={"q": address}).text
    return re.search(r'href="/admin/subscribers/(\d+)"', page)[1]  # type: ignore[index]


def test_staff_edit_a_person_and_resubscribe_only_with_a_reason(console) -> None:  # noqa: F811
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    ana = _person_id(client, "ana@example.org")
    changed = client.post(
        f"/admin/subscribers/{ana}/edit",
        data={"csrf": csrf, "name": "Ana María", "format": "text", "list": ["weekly"]},
        follow_redirects=True,
    )
    assert "changed: name, left alerts, format" in changed.text
    info = details(engine, "ana@example.org")
    assert info.name == "Ana María"
    assert {(m.list_slug, m.status, m.format) for m in info.memberships} == {
        ("weekly", "active", "text"),
        ("alerts", "unsubscribed", "html"),  # the lists they left keep what they had
    }
    back = client.post(
        f"/admin/subscribers/{ana}/edit",
        data={"csrf": csrf, "name": "Ana María", "format": "text", "list": ["weekly", "alerts"]},
        follow_redirects=True,
    )
    assert "not changed: ana@example.org left alerts: put them back with Resubscribe" in back.text
    assert "Resubscribe" in back.text
    no_reason = client.post(
        f"/admin/subscribers/{ana}/resubscribe",
        data={"csrf": csrf, "list": "alerts", "reason": ""},
        follow_redirects=True,
    )
    assert "not resubscribed: say why" in no_reason.text
    done = client.post(
        f"/admin/subscribers/{ana}/resubscribe",
        data={"csrf": csrf, "list": "alerts", "reason": "letter of 28 Nov"},
        follow_redirects=True,
    )
    assert "updated ana@example.org on alerts (active" in done.text
    entry = [(a, t) for _, a, t in _audit(engine) if a == "subscriber resubscribed"]
    assert entry == [("subscriber resubscribed", "ana@example.org")]
    with engine.connect() as conn:
        detail = conn.execute(
            sa.select(audit_log.c.detail).where(audit_log.c.action == "subscriber resubscribed")
        ).scalar()
    assert detail == "alerts: letter of 28 Nov"


def test_staff_set_the_sections_a_reader_asked_for(console) -> None:  # noqa: F811
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    ana = _person_id(client, "ana@example.org")
    page = client.get(f"/admin/subscribers/{ana}").text
    assert page.count('name="section"') == len(settings.edition.sections) == 3
    assert page.count("every section") == 2  # weekly and alerts: no choice yet
    form = {"csrf": csrf, "name": "Ana", "list": ["weekly", "alerts"], "format": "html"}
    shown = form | {"sections_shown": "1"}
    chose = client.post(
        f"/admin/subscribers/{ana}/edit",
        data=shown | {"section": ["events", "news"]},
        follow_redirects=True,
    )
    assert "changed: sections" in chose.text
    assert chose.text.count('<td data-label="Sections">News, Events</td>') == 2
    assert {m.sections for m in details(engine, "ana@example.org").memberships} == {
        ("events", "news")  # on every list
    }
    none = client.post(
        f"/admin/subscribers/{ana}/edit", data=shown | {"section": []}, follow_redirects=True
    )
    assert "not changed: pick at least one section" in none.text
    unshown = client.post(f"/admin/subscribers/{ana}/edit", data=form, follow_redirects=True)
    assert "nothing to change" in unshown.text  # a form without the boxes keeps the choice
    every = client.post(
        f"/admin/subscribers/{ana}/edit",
        data=shown | {"section": ["news", "stories", "events"]},
        follow_redirects=True,
    )
    assert "changed: sections" in every.text and every.text.count("every section") == 2
    assert {m.sections for m in details(engine, "ana@example.org").memberships} == {None}
    logged = [a for _, a, _ in _audit(engine) if a == "subscriber changed"]
    assert len(logged) == 2


def _contents(client, edition_id: str = WEEK) -> list[str]:
    """The titles of the Contents list, in order, with (left out) marks."""
    page = client.get(f"/admin/editions/{edition_id}").text
    desk = page.split("<h2>Contents</h2>", 1)[1].split("<h2>Sending</h2>", 1)[0]
    return re.findall(
        r'<li id="item-[0-9a-z-]+" class="([^"]*)">\s*<p><strong>([^<]+)</strong>', desk
    )


def _email(engine, edition_id: str = WEEK):
    with engine.connect() as conn:
        return editions.get_edition(conn, edition_id)


def _pdf_text(engine) -> str:
    with engine.connect() as conn:
        [pdf, *_] = [f for f in editions.get_files(conn, WEEK) if f.filename.endswith(".pdf")]
    done = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf.data, capture_output=True, check=True, timeout=60
    )
    return " ".join(done.stdout.decode().split())


def _key_of(client, title: str) -> str:
    page = client.get(f"/admin/editions/{WEEK}").text
    found = re.search(
        r'<li id="item-([0-9a-z-]+)" class="[^"]*">\s*<p><strong>' + re.escape(title), page
    )
    assert found, title
    return found[1]


def test_a_story_left_out_is_gone_from_every_part_and_stays_gone(console) -> None:  # noqa: F811
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    listed = _contents(client)
    assert len(listed) > 3
    first_news = listed[1][1]  # [0] is the editor's note
    key = _key_of(client, first_news)
    assert first_news in _email(engine).email.text
    assert first_news[:30] in _pdf_text(engine)
    done = client.post(f"/admin/editions/{WEEK}/items/{key}/leave_out", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"].endswith(f"#item-{key}")
    stored = _email(engine)
    assert first_news not in stored.email.text and first_news not in stored.email.html
    with engine.connect() as conn:
        files = editions.get_files(conn, WEEK)
    assert all(
        first_news.encode() not in f.data for f in files if f.content_type.startswith("text/")
    )
    rebuilt = client.post(f"/admin/editions/{WEEK}/rebuild", data={"csrf": csrf})
    assert "Rebuilt from what is collected now" in rebuilt.text
    assert first_news not in _email(engine).email.text
    assert ("left-out", first_news) in _contents(client)
    client.post(f"/admin/editions/{WEEK}/items/{key}/put_back", data={"csrf": csrf})
    assert first_news in _email(engine).email.text
    history = client.get(f"/admin/editions/{WEEK}").text
    assert (
        f"{STAFF} left out “{first_news}”" in history
        and f"{STAFF} put back “{first_news}”" in history
    )


def test_staff_rewrite_a_summary_move_a_story_and_set_the_subject(console) -> None:  # noqa: F811
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    news = [title for _, title in _contents(client)][1:3]
    second = _key_of(client, news[1])
    client.post(f"/admin/editions/{WEEK}/items/{second}/up", data={"csrf": csrf})
    text = _email(engine).email.text
    assert text.index(news[1]) < text.index(news[0])
    client.post(
        f"/admin/editions/{WEEK}/items/{second}/edit",
        data={"csrf": csrf, "title": "A better headline", "summary": "Fixed a typo here."},
    )
    stored = _email(engine)
    assert "A better headline" in stored.email.text and "Fixed a typo here." in stored.email.html
    with engine.connect() as conn:
        kept = conn.execute(sa.select(items.c.title).where(items.c.key == second)).scalar()
    assert kept == news[1]  # the stored item stays as the feed gave it
    client.post(
        f"/admin/editions/{WEEK}/subject",
        data={"csrf": csrf, "subject": "Our week: housing first", "preheader": "Read this"},
    )
    stored = _email(engine)
    assert stored.subject == "Our week: housing first" and "Read this" in stored.email.html
    client.post(f"/admin/editions/{WEEK}/rebuild", data={"csrf": csrf})
    stored = _email(engine)
    assert stored.subject == "Our week: housing first" and "A better headline" in stored.email.text


def test_a_sent_edition_can_no_longer_be_changed(console) -> None:  # noqa: F811
    from digest.lifecycle.states import State, transition

    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    key = _key_of(client, _contents(client)[1][1])
    with engine.begin() as conn:
        for state in (State.APPROVED, State.SENDING, State.SENT):
            transition(conn, WEEK, state, who="test", now=datetime.now(UTC))
    assert "<h2>Contents</h2>" not in client.get(f"/admin/editions/{WEEK}").text
    refused = client.post(f"/admin/editions/{WEEK}/items/{key}/leave_out", data={"csrf": csrf})
    assert refused.status_code == 400 and "is no longer changed" in refused.text
    refused = client.post(f"/admin/editions/{WEEK}/rebuild", data={"csrf": csrf})
    assert refused.status_code == 400


def test_the_editors_note_written_in_the_console_opens_the_edition(console) -> None:  # noqa: F811
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    form = {
        "csrf": csrf,
        "title": "A hard week, and a win",
        "body": "The council **voted** for the drop-in centre.\n\nThank you all.",
        "editor_note": "on",
        "section": "news",
        "published": (NOW - timedelta(hours=1))
        .astimezone(settings.organisation.zone)
        .strftime("%Y-%m-%dT%H:%M"),  # inside the week the edition covers
        "author": "Sam",
    }
    shown = client.post("/admin/notes", data={**form, "action": "preview"})
    assert shown.status_code == 200 and "The council voted for the drop-in centre." in shown.text
    assert "&lt;strong&gt;voted&lt;/strong&gt;" in shown.text  # rendered, in the srcdoc
    saved = client.post("/admin/notes", data={**form, "action": "save"})
    assert saved.status_code == 303
    client.post(f"/admin/editions/{WEEK}/rebuild", data={"csrf": csrf})
    text = _email(engine).email.text
    assert "A hard week, and a win" in text and "The council voted" in text
    others = [title for _, title in _contents(client) if title in text and "hard week" not in title]
    assert others and all(text.index("A hard week") < text.index(title) for title in others)
    note_id = re.search(r'href="/admin/notes/(\d+)"', client.get("/admin/notes").text)[1]  # type: ignore[index]
    client.post(f"/admin/notes/{note_id}", data={**form, "body": "Changed.", "action": "save"})
    client.post(f"/admin/editions/{WEEK}/rebuild", data={"csrf": csrf})
    assert "Changed." in _email(engine).email.text
    client.post(f"/admin/notes/{note_id}", data={**form, "action": "delete"})
    client.post(f"/admin/editions/{WEEK}/rebuild", data={"csrf": csrf})
    assert "A hard week, and a win" not in _email(engine).email.text
    assert [a for _, a, _ in _audit(engine) if a.startswith("note")] == [
        "note saved",
        "note saved",
        "note deleted",
    ]
    empty = client.post("/admin/notes", data={**form, "title": " ", "action": "save"})
    assert empty.status_code == 400 and "the title is empty" in empty.text


def test_the_branding_page_shows_the_settings_and_a_sample_email(make_project) -> None:
    from tests.conftest import EXAMPLES

    project = make_project(
        f'\n[branding]\nlogo = "{EXAMPLES / "branding" / "logo.png"}"\nlogo_alt = "Our logo"\n'
        'colour = "#1d5c4b"\n'
        'footer_links = [{ label = "Donate", url = "https://coalition.example.org/give" }]\n'
    )
    from digest.staff.users import add_user
    from tests.console_setup import PASSWORD

    add_user(project.engine(), STAFF, PASSWORD, who="test", now=datetime.now(UTC))
    client, _ = _logged_in(project.settings(), project.engine())
    page = client.get("/admin/branding").text
    assert '<img src="data:image/png;base64,' in page and 'alt="Our logo"' in page
    assert "#1d5c4b (contrast with white" in page
    assert '<a href="https://coalition.example.org/give">Donate</a>' in page
    assert "How our emails look" in page and "#1d5c4b" in page.split("srcdoc=", 1)[1]


def test_the_note_preview_says_which_parts_print_leaves_out(console) -> None:  # noqa: F811
    _, settings, engine = console
    client, csrf = _logged_in(settings, engine)
    form = {
        "csrf": csrf,
        "title": "Letter-writing night",
        "body": (
            "We meet on Tuesday.\n\n[online] Join on Zoom: https://zoom.example/j/1\n\n"
            "Bring stamps."
        ),
        "section": "news",
        "published": (NOW - timedelta(hours=1))
        .astimezone(settings.organisation.zone)
        .strftime("%Y-%m-%dT%H:%M"),
        "author": "Sam",
        "action": "preview",
    }
    shown = client.post("/admin/notes", data=form)
    assert shown.status_code == 200
    assert "[online]</code>" in shown.text  # the form says how to mark a part
    printed = shown.text.split("<h3>Printed edition</h3>", 1)[1]
    assert "Left out of the printed edition" in printed
    assert "<li>Join on Zoom: https://zoom.example/j/1</li>" in printed
    assert "We meet on Tuesday" not in printed.split("</ul>", 1)[0]
    whole = client.post("/admin/notes", data={**form, "body": "We meet on Tuesday."})
    assert "Printed whole: nothing in this note is marked" in whole.text
