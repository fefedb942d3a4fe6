"""The unsubscribe link's pages, rendered once and reused (issue 18): each answer is the
same page, byte for byte, as the template gives for that person, list and answer; a
forged link gets the same refusal as before; a GET still changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.config import Secrets
from digest.context import App
from digest.web.app import create_app
from digest.web.pages import render
from tests.conftest import NOW, import_people

KEY = "one-click-test-secret-key-0123456789"
KEYS = Keyring(KEY.encode())
EXTRA = '[[lists]]\nslug = "alerts"\nname = "Alerts & <Urgent>"\nkind = "alerts"\n'
ODD = "o'neil+a&b@example.org"  # the page must escape it as the template does


@pytest.fixture
def site(make_project, tmp_path: Path):
    project = make_project(EXTRA)
    settings, engine = project.settings(), project.engine()
    people = tmp_path / "p.csv"
    people.write_text(f'email\n"{ODD}"\nbo@example.org\n')
    import_people(settings, engine, people)
    import_people(settings, engine, people, list_slug="alerts")
    client = TestClient(create_app(App(settings, engine, Secrets(secret_key=KEY))))
    return settings, engine, client


def _page(settings, slug_name: str, email: str, changed: bool | None, done: bool) -> bytes:
    return bytes(
        render(
            settings,
            "web/unsubscribe.html.j2",
            title="Unsubscribe",
            done=done,
            email=email,
            changed=changed,
            list_name=slug_name,
        ).body
    )


def test_each_answer_is_the_templates_page_for_that_person(site) -> None:
    settings, engine, client = site
    sid = details(engine, ODD).id
    link = f"/u/{KEYS.make('unsubscribe', sid, 'alerts', now=NOW)}"
    shown = client.get(link)
    assert shown.status_code == 200 and shown.content == _page(
        settings, "Alerts & <Urgent>", "", None, done=False
    )
    assert {m.status for m in details(engine, ODD).memberships} == {"active"}
    for changed in (True, False):  # left now, then "already done"
        done = client.post(link, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        assert done.content == _page(settings, "Alerts & <Urgent>", ODD, changed, done=True)
        assert "o&#39;neil+a&amp;b@example.org" in done.text
    other = client.post(f"/u/{KEYS.make('unsubscribe', 2, 'weekly', now=NOW)}")
    assert other.content == _page(settings, "Weekly", "bo@example.org", True, done=True)
    assert done.headers["cache-control"] == "no-store"
    assert done.headers["x-frame-options"] == "DENY"
    assert done.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_link_is_refused_as_before_and_changes_nothing(site, method: str) -> None:
    _, engine, client = site
    good = KEYS.make("unsubscribe", 2, "weekly", now=NOW)
    for token in ("nonsense", good[:-3] + "abc", KEYS.make("preferences", 2, "weekly", now=NOW)):
        answer = getattr(client, method)(f"/u/{token}")
        assert answer.status_code == 400
        assert "This unsubscribe link is not valid (it may be cut short)." in answer.text
        assert "This link does not work" in answer.text
    assert {m.status for m in details(engine, "bo@example.org").memberships} == {"active"}


def test_a_link_of_someone_we_no_longer_hold_is_a_400(site) -> None:
    _, _, client = site
    answer = client.post(f"/u/{KEYS.make('unsubscribe', 999, 'weekly', now=NOW)}")
    assert answer.status_code == 400 and "no longer hold" in answer.text


def test_other_methods_are_not_allowed(site) -> None:
    _, _, client = site
    answer = client.put(f"/u/{KEYS.make('unsubscribe', 2, 'weekly', now=NOW)}")
    assert answer.status_code == 405 and "Not allowed" in answer.text
