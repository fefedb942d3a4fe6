"""The console as the editorial desk: what staff do there without a terminal."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa

from digest.store import editions
from digest.store.tables import batches
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
