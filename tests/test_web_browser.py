"""The web app in headless Chromium against a real uvicorn server: a person subscribes,
confirms from the link in the outbox, changes preferences and unsubscribes; staff log in,
preview, approve and send an alert. axe-core checks the public pages. Screenshots go to
tests/artifacts/."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from digest.audience.members import details
from digest.audience.tokens import Keyring
from digest.config import Secrets
from digest.context import App
from tests.browsers import axe_violations, screenshot
from tests.conftest import EXAMPLE_SOURCES, NOW, import_people
from tests.console_setup import ALERTS, PASSWORD, STAFF, awaiting_approval
from tests.served import Served, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

KEY = "browser-test-secret-key-0123456789"


class Site(Served):
    """A project served by uvicorn on loopback, in a thread (as `digest serve` serves it)."""

    def __init__(self, project, port: int) -> None:
        self.project = project
        self.settings, self.engine = project.settings(), project.engine()
        super().__init__(App(self.settings, self.engine, Secrets(secret_key=KEY)), port)

    def outbox(self) -> list[Path]:
        return sorted((self.project.folder / "var" / "outbox").rglob("*.eml"))


@pytest.fixture
def site(make_project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    port = free_port()
    monkeypatch.setenv("DIGEST_DELIVERY__BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    project = make_project(EXAMPLE_SOURCES + ALERTS)
    with Site(project, port) as running:
        yield running


def _text_of(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_subscribe_confirm_preferences_unsubscribe(browser: Browser, site: Site) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 800})
    page.goto(f"{site.url}/subscribe")
    page.get_by_label("Email address").fill("dee@example.org")
    page.get_by_label("Name (optional)").fill("Dee")
    page.get_by_label("Action alerts").check()
    page.get_by_label("Plain text only").check()
    screenshot(page, "web-subscribe")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("a message is on its way")).to_be_visible()
    assert details(site.engine, "dee@example.org").status == "pending"

    # The confirmation goes out after the answer (a background task): wait for it.
    wait_until("the confirmation email", lambda: len(site.outbox()) == 1)
    [confirmation] = site.outbox()
    link = re.search(r"http://127\.0\.0\.1:\d+/c/\S+", _text_of(confirmation))
    assert link, "no confirm link in the email"
    page.goto(link.group(0))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("dee@example.org is subscribed")).to_be_visible()
    screenshot(page, "web-confirmed")
    who = details(site.engine, "dee@example.org")
    assert who.status == "active"
    assert {(m.list_slug, m.status, m.format) for m in who.memberships} == {
        ("weekly", "active", "text"),
        ("alerts", "active", "text"),
    }

    keys = Keyring(KEY.encode())
    page.goto(f"{site.url}/p/{keys.make('preferences', who.id, 'weekly', now=NOW)}")
    page.get_by_label("Action alerts").uncheck()
    page.get_by_label("Email with pictures and links (HTML)").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    screenshot(page, "web-preferences")
    after = {
        (m.list_slug, m.status, m.format)
        for m in details(site.engine, "dee@example.org").memberships
    }
    assert ("weekly", "active", "html") in after and ("alerts", "unsubscribed", "html") in after

    page.goto(f"{site.url}/u/{keys.make('unsubscribe', who.id, 'weekly', now=NOW)}")
    assert details(site.engine, "dee@example.org").status == "active"  # a GET changes nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_text("will get no more emails from Weekly")).to_be_visible()
    screenshot(page, "web-unsubscribed")
    assert details(site.engine, "dee@example.org").status == "unsubscribed"


def test_public_pages_have_no_serious_accessibility_violations(
    browser: Browser, site: Site
) -> None:
    people = site.project.folder / "p.csv"
    people.write_text("email\nana@example.org\n")
    import_people(site.settings, site.engine, people)
    keys = Keyring(KEY.encode())
    pages = {
        "subscribe": "/subscribe",
        "confirm": f"/c/{keys.make('confirm', 1, 'weekly', now=NOW)}",
        "preferences": f"/p/{keys.make('preferences', 1, 'weekly', now=NOW)}",
        "unsubscribe": f"/u/{keys.make('unsubscribe', 1, 'weekly', now=NOW)}",
        "bad-link": "/u/not-a-token",
        "archive": "/archive",
        "login": "/admin/login",
    }
    context = browser.new_context(bypass_csp=True)  # to inject axe-core; CSP is tested apart
    found = {}
    for name, path in pages.items():
        for scheme in ("light", "dark"):
            page = context.new_page()
            page.emulate_media(color_scheme=scheme)
            page.goto(site.url + path)
            violations = axe_violations(page)
            if violations:
                found[f"{name} ({scheme})"] = violations
            page.close()
    assert found == {}


def _wait_for_text(page: Page, text: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while text not in page.content():
        assert time.monotonic() < deadline, f"{text!r} never appeared"
        time.sleep(0.3)
        page.reload()


def test_staff_log_in_preview_approve_and_send_an_alert(browser: Browser, site: Site) -> None:
    awaiting_approval(site.project)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{site.url}/admin/editions/2026-W48")
    assert "/admin/login" in page.url
    page.get_by_label("Email address").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/editions/2026-W48")
    phone = page.frame_locator('iframe[title="The email at phone width"]')
    expect(phone.get_by_role("link", name="Read online")).to_be_visible()
    assert page.locator('iframe[title="The email at phone width"]').get_attribute("width") == "375"
    screenshot(page, "admin-preview")

    page.get_by_role("button", name="Approve and send").click()
    expect(page.get_by_text("to 2 recipients now?")).to_be_visible()
    screenshot(page, "admin-approve-confirm")
    page.get_by_role("button", name="Yes, send it now").click()
    _wait_for_text(page, "State: <strong>sent</strong>")
    screenshot(page, "admin-sent")
    assert len(site.outbox()) == 2
    page.get_by_role("link", name="Editions").click()
    expect(page.get_by_text("Next weekly send:")).to_be_visible()
    screenshot(page, "admin-dashboard")

    page.get_by_role("link", name="New alert").click()
    page.get_by_label("Subject").fill("Council vote tonight")
    page.get_by_label("Message (Markdown)").fill(
        "Come to City Hall at **6 pm**.\n\n- bring a friend"
    )
    page.get_by_label("List").select_option("alerts")
    page.get_by_role("button", name="Preview").click()
    preview = page.frame_locator('iframe[title="The alert at desktop width"]')
    expect(preview.locator("strong", has_text="6 pm")).to_be_visible()
    screenshot(page, "admin-alert-preview")
    page.get_by_role("button", name="Send a test").click()
    expect(page.get_by_text(f"Test sent to {STAFF}")).to_be_visible()
    page.get_by_role("button", name="Send…").click()
    expect(page.get_by_text("to 2 recipients now?")).to_be_visible()
    page.get_by_role("button", name="Yes, send it now").click()
    page.wait_for_url("**/admin/editions/alert-*")
    _wait_for_text(page, "State: <strong>sent</strong>")
    screenshot(page, "admin-alert-sent")
    texts = [_text_of(p) for p in site.outbox()]
    assert sum("City Hall at 6 pm" in t for t in texts) == 3  # the test and two subscribers


def test_console_pages_have_no_serious_accessibility_violations(
    browser: Browser, site: Site
) -> None:
    awaiting_approval(site.project)
    context = browser.new_context(bypass_csp=True)  # to inject axe-core
    page = context.new_page()
    page.goto(f"{site.url}/admin/login")
    page.get_by_label("Email address").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/admin")
    found = {}
    for path in (
        "/admin",
        "/admin/editions/2026-W48",
        "/admin/alerts/new",
        "/admin/subscribers",
        "/admin/subscribers/1",
        "/admin/subscribers/import",
        "/admin/activity",
    ):
        page.goto(site.url + path)
        if violations := axe_violations(page):
            found[path] = violations
    assert found == {}
