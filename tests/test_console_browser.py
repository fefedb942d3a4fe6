"""The staff console in headless Chromium against a real uvicorn server: every page fits a
phone (nothing scrolls sideways at 375 px) and axe-core finds nothing serious at 375 and
800 px; staff send a test copy of the weekly edition, schedule an alert for tomorrow and
cancel it, add someone and change them, filter the bounced and page past 50 people.
Screenshots go to tests/artifacts/console-*.png.

One served project for the whole module (its setup collects and builds a week): each test
logs in afresh and leaves what it did for the next to ignore."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from digest.audience.members import details
from digest.staff.charts import week_starts
from digest.store import editions
from digest.store.tables import subscribers
from tests.browsers import ARTIFACTS, axe_violations, screenshot
from tests.conftest import (
    BASE_CONFIG,
    EXAMPLE_SOURCES,
    NOW,
    QUIET_CHECKS,
    ZONE,
    Project,
    import_people,
)
from tests.console_setup import ALERTS, PASSWORD, STAFF, WEEK, awaiting_approval
from tests.served import free_port
from tests.test_charts import _generated_year, _sent_edition
from tests.test_web_browser import KEY, Site

pytestmark = pytest.mark.browser
PHONE, DESKTOP = 375, 800


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Ana and Bo on both lists, the week awaiting approval, a staff account, a year of
    members and a few editions sent, for the charts."""
    folder = tmp_path_factory.mktemp("console")
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        for name in ("DIGEST_DATABASE_URL", "DIGEST_CONFIG", "SENDGRID_API_KEY"):
            env.delenv(name, raising=False)
        env.setenv("DIGEST_DELIVERY__BASE_URL", f"http://127.0.0.1:{port}")
        env.setenv("DIGEST_SECRET_KEY", KEY)
        text = textwrap.dedent(BASE_CONFIG) + textwrap.dedent(EXAMPLE_SOURCES + ALERTS)
        text += QUIET_CHECKS
        (folder / "config.toml").write_text(text, encoding="utf-8")
        project = Project(folder)
        awaiting_approval(project)
        engine = project.engine()
        with engine.connect() as conn:
            after = conn.execute(sa.select(sa.func.max(subscribers.c.id))).scalar_one()
        _generated_year(week_starts(NOW, ZONE), first_id=after + 1).store(engine)
        with engine.begin() as conn:
            for n in range(40, 47):
                events = {"delivered": 180 + n, "bounce": n % 3, "unsubscribe": n % 4}
                _sent_edition(conn, n, NOW - timedelta(weeks=47 - n), events)
        with Site(project, port) as running:
            yield running


def _log_in(browser: Browser, site: Site, **options: object) -> Page:
    page = browser.new_page(**options)  # type: ignore[arg-type]
    page.goto(f"{site.url}/admin/login")
    page.get_by_label("Email address").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/admin")
    return page


def _first_subscriber(site: Site) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.min(subscribers.c.id))).scalar_one())


def test_every_console_page_fits_a_phone_and_has_no_serious_violations(
    browser: Browser, site: Site
) -> None:
    pages = {
        "login": "/admin/login",
        "dashboard": "/admin",
        "edition": f"/admin/editions/{WEEK}",
        "alert": "/admin/alerts/new",
        "subscribers": "/admin/subscribers",
        "subscriber": f"/admin/subscribers/{_first_subscriber(site)}",
        "import": "/admin/subscribers/import",
        "activity": "/admin/activity",
        "notes": "/admin/notes",
        "note": "/admin/notes/new",
        "branding": "/admin/branding",
    }
    context = browser.new_context(bypass_csp=True)  # to inject axe-core; CSP is tested apart
    page = context.new_page()
    wide, found = {}, {}
    for name, path in pages.items():
        if name == "dashboard":  # the login page was seen logged out
            page.get_by_label("Email address").fill(STAFF)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{site.url}/admin")
        page.set_viewport_size({"width": PHONE, "height": 900})
        page.goto(site.url + path)
        for width in (PHONE, DESKTOP):
            page.set_viewport_size({"width": width, "height": 900})
            if width == PHONE:
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if scroll > page.evaluate("window.innerWidth"):
                    wide[name] = scroll
            if violations := axe_violations(page):
                found[f"{name} at {width} px"] = violations
            if name == "edition" and width == DESKTOP:  # a whole page of it takes 6 s
                page.screenshot(path=str(ARTIFACTS / f"console-{name}-{width}.png"))
            else:
                screenshot(page, f"console-{name}-{width}")
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": PHONE, "height": 900})
    page.goto(f"{site.url}/admin")
    if violations := axe_violations(page):
        found["dashboard, dark"] = violations
    screenshot(page, "console-dashboard-dark-375")
    context.close()
    assert wide == {}, "pages wider than the phone"
    assert found == {}


def test_staff_send_a_test_copy_of_the_weekly_edition(browser: Browser, site: Site) -> None:
    page = _log_in(browser, site)
    page.get_by_role("link", name=WEEK).click()
    page.get_by_label("Test address").fill("editor@example.org")
    page.get_by_role("button", name="Send a test").click()
    expect(page.get_by_text("Test sent to editor@example.org.")).to_be_visible()
    copies = list((site.project.folder / "var" / "outbox" / "test").glob("*.eml"))
    assert any("Subject: [TEST] " in c.read_text() for c in copies)
    with site.engine.connect() as conn:
        assert editions.state_of(conn, WEEK) == "awaiting_approval"
    page.close()


def test_staff_schedule_an_alert_for_tomorrow_and_cancel_it(browser: Browser, site: Site) -> None:
    page = _log_in(browser, site)
    page.get_by_role("link", name="New alert").click()
    when = (datetime.now(ZONE) + timedelta(days=1)).replace(second=0, microsecond=0)
    page.get_by_label("Subject").fill("Rally tomorrow")
    page.get_by_label("Message (Markdown)").fill("Meet at the courthouse.")
    page.get_by_label("List").select_option("alerts")
    page.get_by_label("Send at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Send…").click()
    expect(page.get_by_text(f"on {when:%A %d %B %Y at %H:%M %Z}?")).to_be_visible()
    page.get_by_role("button", name="Yes, schedule it").click()
    page.wait_for_url(re.compile(r".*/admin/editions/alert-[0-9-]+$"))
    alert = page.url.rsplit("/", 1)[1]
    expect(page.get_by_text(f"to go {when:%A %d %B %Y at %H:%M %Z}")).to_be_visible()
    with site.engine.connect() as conn:
        stored = editions.get_edition(conn, alert)
    assert stored is not None and stored.state == "scheduled" and stored.send_at == when
    page.get_by_role("button", name="Cancel this send").click()
    expect(page.get_by_text("State: cancelled")).to_be_visible()
    with site.engine.connect() as conn:
        assert editions.state_of(conn, alert) == "cancelled"
    page.close()


def test_staff_add_someone_and_change_them(browser: Browser, site: Site) -> None:
    page = _log_in(browser, site)
    page.get_by_role("link", name="Subscribers").click()
    adding = page.locator('form[action="/admin/subscribers/add"]')
    adding.get_by_label("Address").fill("Cy@Example.org")
    adding.get_by_label("Name").fill("Cy")
    adding.locator("select[name=list]").select_option("weekly")
    adding.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Added Cy@Example.org to weekly (active")).to_be_visible()
    assert details(site.engine, "cy@example.org").status == "active"

    page.get_by_label("Address or name").fill("cy@example")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="Cy@Example.org").click()
    change = page.locator('form[action$="/edit"]')
    change.get_by_label("Name").fill("Cy Young")
    change.get_by_label("Action alerts").check()
    change.get_by_label("Format").select_option("text")
    change.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text(re.compile(r"changed: name, joined alerts"))).to_be_visible()
    who = details(site.engine, "cy@example.org")
    assert who.name == "Cy Young"
    assert {(m.list_slug, m.status, m.format) for m in who.memberships} == {
        ("weekly", "active", "text"),
        ("alerts", "active", "text"),
    }
    page.close()


def test_staff_filter_the_bounced_and_page_past_fifty(browser: Browser, site: Site) -> None:
    people = site.project.folder / "many.csv"
    people.write_text("email,name\n" + "".join(f"m{i:03d}@example.org,M {i}\n" for i in range(70)))
    import_people(site.settings, site.engine, people)
    with site.engine.begin() as conn:
        conn.execute(
            sa.update(subscribers)
            .where(subscribers.c.email.in_(["m007@example.org", "m061@example.org"]))
            .values(status="bounced")
        )
        everyone = conn.execute(sa.select(sa.func.count()).select_from(subscribers)).scalar()
    page = _log_in(browser, site)
    page.get_by_role("link", name="Subscribers").click()
    search = page.get_by_role("search")
    search.get_by_label("Status").select_option("bounced")
    search.get_by_role("button", name="Show").click()
    people_shown = page.locator('table.reflow a[href^="/admin/subscribers/"]')
    expect(people_shown).to_have_text(["m061@example.org", "m007@example.org"])

    page.goto(f"{site.url}/admin/subscribers")
    seen: list[str] = []
    while True:
        seen += people_shown.all_inner_texts()
        following = page.locator('a[rel="next"]')
        if not following.count():
            break
        expect(following).to_have_text("Next 50 →")
        following.click()
        page.wait_for_load_state()
    assert len(seen) == len(set(seen)) == everyone
    assert seen[0] == "m069@example.org"  # newest first
    page.close()
