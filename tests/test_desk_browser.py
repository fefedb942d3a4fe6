"""The editorial desk in headless Chromium against a real uvicorn server: the editor's note
written in the console opens the edition; a story left out is gone from the HTML, the text
part and the PDF, and stays gone after Rebuild; a summary and the subject rewritten. Each
page is checked with axe-core and for sideways scrolling at 375 px; screenshots go to
tests/artifacts/."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import Browser, Page, expect

from digest.store import editions
from tests.browsers import axe_violations, screenshot
from tests.conftest import NOW
from tests.console_setup import PASSWORD, STAFF, WEEK, awaiting_approval
from tests.test_web_browser import Site, site  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


def _log_in(page: Page, site: Site) -> None:  # noqa: F811
    page.goto(f"{site.url}/admin/login")
    page.get_by_label("Email address").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/admin")


def _looked_at(page: Page, name: str) -> None:
    """axe-core finds nothing serious, nothing scrolls sideways at 375 px; screenshots."""
    for width in (800, 375):
        page.set_viewport_size({"width": width, "height": 900})
        assert axe_violations(page) == [], f"{name} at {width} px"
        screenshot(page, f"desk-{name}-{width}")
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 375, f"{name} is {wide} px wide at 375 px"
    page.set_viewport_size({"width": 800, "height": 900})


def _stored(site: Site):  # noqa: F811
    with site.engine.connect() as conn:
        stored = editions.get_edition(conn, WEEK)
        pdf = next(f for f in editions.get_files(conn, WEEK) if f.filename.endswith(".pdf"))
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf.data, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    assert stored is not None
    return stored, " ".join(text.split())


def test_staff_write_the_note_leave_a_story_out_and_rewrite_one(
    browser: Browser,
    site: Site,  # noqa: F811
) -> None:
    awaiting_approval(site.project)
    context = browser.new_context(bypass_csp=True, viewport={"width": 800, "height": 900})
    page = context.new_page()
    _log_in(page, site)

    page.goto(f"{site.url}/admin/notes/new")
    page.get_by_label("Title").fill("A hard week, and a win")
    page.get_by_label("Note (Markdown").fill("The council **voted** for the drop-in centre.")
    page.get_by_label("This is the editor's note").check()
    when = NOW.astimezone(site.settings.organisation.zone).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("Publish date").fill(when)
    page.get_by_role("button", name="Preview").click()
    frame = page.frame_locator('iframe[title="The note at desktop width"]')
    expect(frame.locator("strong", has_text="voted")).to_be_visible()
    _looked_at(page, "note-preview")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved “A hard week, and a win”.")).to_be_visible()
    _looked_at(page, "notes")

    page.goto(f"{site.url}/admin/editions/{WEEK}")
    page.get_by_role("button", name="Rebuild").click()
    expect(page.get_by_text("Rebuilt from what is collected now")).to_be_visible()
    preview = page.frame_locator('iframe[title="The email at desktop width"]')
    note = preview.get_by_role("heading", name="A hard week, and a win")
    expect(note).to_be_visible()
    headings = preview.locator("h2, h3").all_inner_texts()
    assert headings.index("A hard week, and a win") < 3  # at the top, under "From the editor"

    stories = page.locator("ol.desk li:not(.left-out):not(.over-cap) strong")
    story = stories.nth(1).inner_text()  # [0] is the editor's note
    stored, pdf = _stored(site)
    assert story in stored.email.text and story[:30] in pdf
    page.get_by_role("button", name=f"Leave out “{story}”").click()
    expect(page.locator("li.left-out strong", has_text=story)).to_be_visible()
    stored, pdf = _stored(site)
    assert story not in stored.email.text and story not in stored.email.html
    assert story[:30] not in pdf
    page.get_by_role("button", name="Rebuild").click()
    expect(page.get_by_text("Rebuilt from what is collected now")).to_be_visible()
    stored, _ = _stored(site)
    assert story not in stored.email.text

    other = stories.nth(1).inner_text()
    page.get_by_text(f"Edit for this edition “{other}”").click()
    item = page.locator("li", has=page.locator("strong", has_text=other))
    item.get_by_label("Summary").fill("A summary rewritten by the editor.")
    item.get_by_role("button", name="Save").click()
    expect(page.get_by_text("(rewritten for this edition)")).to_be_visible()
    page.get_by_label("Subject line").fill("This week: the drop-in centre")
    page.get_by_role("button", name="Save subject and preheader").click()
    expect(page.get_by_text("Subject and preheader saved.")).to_be_visible()
    stored, _ = _stored(site)
    assert stored.subject == "This week: the drop-in centre"
    assert "A summary rewritten by the editor." in stored.email.text
    expect(page.get_by_text(f"{STAFF} left out “{story}”")).to_be_visible()
    _looked_at(page, "edition")
