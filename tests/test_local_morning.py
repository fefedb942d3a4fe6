"""Each reader's morning: with [schedule] deliver_at_local, the weekly edition reaches every
reader at 07:00 in their own timezone, handed to SendGrid with send_at under one batch_id,
and a cancel before the time takes back whatever has not been delivered."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from typer.testing import CliRunner

from digest.cli import app
from digest.dispatch.morning import MorningTrigger, job_start
from digest.lifecycle.weekly import run_weekly
from digest.schedule import cron, weekly_trigger
from digest.staff.users import add_user
from digest.store.tables import batches, editions
from tests.conftest import API_KEY, EXAMPLE_SOURCES, ZONE, Project
from tests.console_setup import PASSWORD, STAFF, signed_in
from tests.fake_sendgrid import FakeSendGrid
from tests.sendgrid_setup import share_render_cache

SEND_DAY = date(2026, 11, 26)  # the Thursday of 2026-W48, when "0 7 * * thu" fires
# Five zones, UTC+13 and UTC-10 among them; the last reader sets none (New York's).
READERS = {
    "tonga@example.org": "Pacific/Tongatapu",  # UTC+13
    "kolkata@example.org": "Asia/Kolkata",  # UTC+5:30
    "london@example.org": "Europe/London",  # UTC+0
    "ny@example.org": "",  # the organisation's: America/New_York, UTC-5
    "honolulu@example.org": "Pacific/Honolulu",  # UTC-10
}
ZONE_OF = {email: zone or "America/New_York" for email, zone in READERS.items()}
MORNING = """
[schedule]
send = "0 7 * * thu"
deliver_at_local = "07:00"
"""
# The weekly job's start: an hour before 07:00 on the send day at UTC+14.
JOB_START = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def seven_local(zone: str) -> datetime:
    return datetime.combine(SEND_DAY, time(7), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def project_with_readers(
    make_project: Callable[[str], Project], tmp_path: Path, *, copies: int = 1
) -> tuple[Project, list[str]]:
    """The examples, the readers (``copies`` of each zone, batches of 2), built at the
    job's start."""
    project = make_project(EXAMPLE_SOURCES + MORNING)
    share_render_cache(project, tmp_path.parent / "render-cache")
    rows = "".join(
        f"{email.replace('@', f'{i}@') if i else email},Reader,html,{zone}\n"
        for email, zone in READERS.items()
        for i in range(copies)
    )
    people = tmp_path / "people.csv"
    people.write_text("email,name,format,timezone\n" + rows, encoding="utf-8")
    cfg = ["--config", str(project.config)]
    runner = CliRunner()
    with time_machine.travel(JOB_START, tick=False):
        for args in (["subscribers", "import", str(people), "--list", "weekly"], ["collect"]):
            result = runner.invoke(app, [*args, *cfg])
            assert result.exit_code == 0, result.output
    return project, cfg


def build_and_send(cfg: list[str], when: datetime = JOB_START) -> None:
    """`digest build` and `digest send --yes` at ``when``, both succeeding."""
    runner = CliRunner()
    with time_machine.travel(when, tick=False):
        for args in (["build"], ["send", "--yes"]):
            result = runner.invoke(app, [*args, *cfg])
            assert result.exit_code == 0, result.output


def zone_of_address(address: str) -> str:
    local, _, domain = address.partition("@")
    return ZONE_OF[local.rstrip("0123456789") + "@" + domain]


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch, make_project: object) -> None:
    """Batches of two, and a secret key (set after make_project clears the environment)."""
    monkeypatch.setenv("DIGEST_DELIVERY__BATCH_SIZE", "2")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "local-morning-test-secret-0123456789")


@pytest.fixture
def sendgrid_env(monkeypatch: pytest.MonkeyPatch, fake: FakeSendGrid) -> FakeSendGrid:
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("DIGEST_SENDGRID_HOST", fake.url)
    return fake


def test_the_weekly_job_books_each_zone_at_seven_in_its_own_morning(
    make_project: Callable[[str], Project], tmp_path: Path, sendgrid_env: FakeSendGrid
) -> None:
    fake = sendgrid_env
    project, cfg = project_with_readers(make_project, tmp_path, copies=3)
    with time_machine.travel(JOB_START, tick=False):
        said = run_weekly(project.app(at=JOB_START), holder="test")
    assert "2026-W48" in said and "failed" not in said, said

    # One batch id from POST /v3/mail/batch, and every request under it.
    assert len(fake.schedules.batch_ids) == 1
    requests = [r for r in fake.requests if r.get("personalizations")]
    assert requests and {r.get("batch_id") for r in requests} == set(fake.schedules.batch_ids)
    # Every personalization at 07:00 in its reader's zone on the send day, within 72 h.
    zones_by_request: dict[int, set[str]] = defaultdict(set)
    for p in fake.accepted:
        address = p["to"][0]["email"]
        zone = zone_of_address(address)
        assert p["send_at"] == int(seven_local(zone).timestamp()), address
        assert JOB_START < seven_local(zone) <= JOB_START + timedelta(hours=72)
        zones_by_request[p["_request"]].add(zone)
    assert len(fake.accepted) == 15
    assert all(len(z) == 1 for z in zones_by_request.values()), zones_by_request
    assert set().union(*zones_by_request.values()) == set(ZONE_OF.values())

    # The ledger keeps each batch's time; status shows all of it still to come.
    with project.engine().connect() as conn:
        rows = conn.execute(sa.select(batches.c.zone, batches.c.deliver_at)).all()
    assert {(r.zone, r.deliver_at) for r in rows} == {(z, seven_local(z)) for z in ZONE_OF.values()}
    with time_machine.travel(JOB_START + timedelta(minutes=5), tick=False):
        status = CliRunner().invoke(app, ["status", "2026-W48", "--json", *cfg])
        text = CliRunner().invoke(app, ["status", "2026-W48", *cfg])
    report = json.loads(status.output)
    assert report["recipients"]["accepted"] == 15
    assert sum(w["recipients"] for w in report["scheduled"]) == 15
    assert [w["zone"] for w in report["scheduled"]][:2] == ["Pacific/Tongatapu"] * 2
    assert "still to be delivered: 15 recipient(s)" in text.output
    assert "Thu 26 Nov 07:00 (Pacific/Honolulu)" in text.output


def test_a_cancel_before_the_first_morning_stops_every_scheduled_batch(
    make_project: Callable[[str], Project], tmp_path: Path, sendgrid_env: FakeSendGrid
) -> None:
    fake = sendgrid_env
    project, cfg = project_with_readers(make_project, tmp_path)
    runner = CliRunner()
    build_and_send(cfg)
    with time_machine.travel(JOB_START + timedelta(minutes=30), tick=False):
        cancelled = runner.invoke(app, ["cancel", "2026-W48", *cfg])
        status = json.loads(runner.invoke(app, ["status", "2026-W48", "--json", *cfg]).output)
    assert cancelled.exit_code == 0, cancelled.output
    assert "5 recipient(s) will not get it; 0 had it already" in cancelled.output
    [change] = fake.schedules.changes
    assert (change["batch_id"], change["status"]) == (fake.schedules.batch_ids[0], "cancel")
    assert sorted(fake.undelivered()) == sorted(READERS)
    assert status["cancelled"] == {"recipients": 5, "batches": 5}
    assert "scheduled" not in status
    with project.engine().connect() as conn:
        state = conn.execute(sa.select(editions.c.state)).scalar()
    assert state == "cancelled"
    with time_machine.travel(JOB_START + timedelta(minutes=31), tick=False):
        again = runner.invoke(app, ["cancel", "2026-W48", *cfg])
    assert again.exit_code == 1 and "cancelled" in again.output


def test_a_cancel_after_some_mornings_stops_only_the_zones_still_waiting(
    make_project: Callable[[str], Project], tmp_path: Path, sendgrid_env: FakeSendGrid
) -> None:
    fake = sendgrid_env
    _, cfg = project_with_readers(make_project, tmp_path)
    runner = CliRunner()
    build_and_send(cfg)
    # 11:00 UTC: Tonga, Kolkata and London have had their morning; New York's is at 12:00.
    with time_machine.travel(datetime(2026, 11, 26, 11, 0, tzinfo=UTC), tick=False):
        cancelled = runner.invoke(app, ["cancel", "2026-W48", *cfg])
    assert cancelled.exit_code == 0, cancelled.output
    assert "2 recipient(s) will not get it; 3 had it already" in cancelled.output
    assert sorted(fake.undelivered()) == ["honolulu@example.org", "ny@example.org"]


def test_after_every_morning_has_passed_the_edition_goes_at_once(
    make_project: Callable[[str], Project], tmp_path: Path, sendgrid_env: FakeSendGrid
) -> None:
    fake = sendgrid_env
    _, cfg = project_with_readers(make_project, tmp_path)
    runner = CliRunner()
    late = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)  # after Honolulu's 17:00 UTC
    build_and_send(cfg, late)
    with time_machine.travel(late, tick=False):
        cancel = runner.invoke(app, ["cancel", "2026-W48", *cfg])
    assert len(fake.accepted) == 5
    assert all("send_at" not in p for p in fake.accepted)
    assert fake.schedules.batch_ids == [] and all("batch_id" not in r for r in fake.requests)
    assert cancel.exit_code == 1 and "cannot be cancelled" in cancel.output


def test_a_send_more_than_72_hours_before_a_morning_is_refused_with_when_to_send(
    make_project: Callable[[str], Project], tmp_path: Path, sendgrid_env: FakeSendGrid
) -> None:
    fake = sendgrid_env
    project, cfg = project_with_readers(make_project, tmp_path)
    runner = CliRunner()
    monday = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # Honolulu's 07:00 is 75 h away
    with time_machine.travel(monday, tick=False):
        assert runner.invoke(app, ["build", *cfg]).exit_code == 0
        result = runner.invoke(app, ["send", "--yes", *cfg])
    assert result.exit_code == 1
    assert "Pacific/Honolulu" in result.output and "more than 72 hours" in result.output
    assert "after Monday 23 November 17:00 UTC" in result.output
    assert fake.requests == []
    with project.engine().connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar() == 0


def test_the_outbox_dates_each_message_at_its_delivery_and_a_cancel_takes_back_the_rest(
    make_project: Callable[[str], Project], tmp_path: Path
) -> None:
    project, cfg = project_with_readers(make_project, tmp_path)
    runner = CliRunner()
    build_and_send(cfg)
    folder = project.folder / "var" / "outbox" / "2026-W48"
    dates = {}
    for path in folder.glob("*.eml"):
        message = message_from_bytes(path.read_bytes())
        dates[message["To"].split("<")[-1].rstrip(">")] = parsedate_to_datetime(message["Date"])
    assert dates == {email: seven_local(zone) for email, zone in ZONE_OF.items()}
    with time_machine.travel(datetime(2026, 11, 26, 11, 0, tzinfo=UTC), tick=False):
        assert runner.invoke(app, ["cancel", "2026-W48", *cfg]).exit_code == 0
    kept = sorted(p.name.split("-", 1)[1] for p in folder.glob("*.eml"))
    taken_back = sorted(p.name.split("-", 1)[1] for p in (folder / "cancelled").glob("*.eml"))
    assert taken_back == ["honolulu@example.org.eml", "ny@example.org.eml"]
    assert kept == ["kolkata@example.org.eml", "london@example.org.eml", "tonga@example.org.eml"]


def test_the_weekly_job_starts_before_the_first_morning_anywhere(
    make_project: Callable[[str], Project],
) -> None:
    settings = make_project(MORNING).settings()
    trigger = weekly_trigger(settings)
    assert isinstance(trigger, MorningTrigger)
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)
    first = trigger.get_next_fire_time(None, monday)
    assert first == JOB_START
    # After that run, the next is a week later (the same hour: no clock change between).
    assert trigger.get_next_fire_time(first, first + timedelta(seconds=1)) == JOB_START + timedelta(
        days=7
    )
    # 07:00 at UTC+14 is before 07:00 in New York by 19 hours; the job is never after the
    # send job's own time.
    fire = cron("0 7 * * thu", settings, "send").get_next_fire_time(None, monday)
    assert fire is not None and job_start(time(7), fire, ZONE) == fire - timedelta(hours=20)
    early = cron("0 1 * * thu", settings, "send").get_next_fire_time(None, monday)
    assert early is not None and job_start(time(23, 30), early, ZONE) == early
    # Without deliver_at_local the job is the send line itself.
    plain = weekly_trigger(make_project("").settings())
    assert plain.get_next_fire_time(None, monday) == datetime(2026, 11, 26, 7, 0, tzinfo=ZONE)


def test_the_console_shows_what_waits_for_each_morning_and_cancels_it(
    make_project: Callable[[str], Project], tmp_path: Path
) -> None:
    project, cfg = project_with_readers(make_project, tmp_path)
    build_and_send(cfg)
    later = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)  # the cookie jar reads the clock too
    with time_machine.travel(later, tick=False):
        ctx = project.app(at=later)
        add_user(ctx.engine, STAFF, PASSWORD, who="test", now=JOB_START)
        client, csrf = signed_in(ctx)
        page = client.get("/admin/editions/2026-W48").text
        waiting = page.split("Still to be delivered", 1)[1].split("</table>", 1)[0]
        assert "Thu 26 Nov 07:00 (Pacific/Honolulu)" in waiting
        assert "Thu 26 Nov 07:00 (America/New_York)" in waiting
        assert "Pacific/Tongatapu" not in waiting  # its morning has come
        assert "Cancel this send" in page
        answer = client.post("/admin/editions/2026-W48/cancel", data={"csrf": csrf, "note": "typo"})
        assert answer.status_code == 303
        page = client.get("/admin/editions/2026-W48").text
        assert "Still to be delivered" not in page and "Cancel this send" not in page
        assert "2 recipient(s) will not get it; 3 had it already. typo" in page
        assert "Cancelled before their delivery time: 2 recipient(s) in 2 batch(es)" in page


def test_a_monday_send_is_built_on_the_sunday_for_the_week_it_goes_in(
    make_project: Callable[[str], Project], tmp_path: Path
) -> None:
    project, _ = project_with_readers(make_project, tmp_path)
    text = project.config.read_text().replace('send = "0 7 * * thu"', 'send = "0 7 * * mon"')
    project.config.write_text(text)
    sunday = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # Monday 07:00 at UTC+14, less an hour
    assert weekly_trigger(project.settings()).get_next_fire_time(None, sunday) == sunday
    with time_machine.travel(sunday, tick=False):
        said = run_weekly(project.app(at=sunday), holder="test")
    assert said.startswith("2026-W49") and "failed" not in said, said
    with project.engine().connect() as conn:
        times = conn.execute(sa.select(batches.c.zone, batches.c.deliver_at)).all()
    monday = {
        z: datetime.combine(date(2026, 11, 30), time(7), tzinfo=ZoneInfo(z))
        for z in ZONE_OF.values()
    }
    assert {(r.zone, r.deliver_at) for r in times} == {
        (z, t.astimezone(UTC)) for z, t in monday.items()
    }


def test_a_cancel_sendgrid_refuses_changes_nothing_and_says_why(
    make_project: Callable[[str], Project], tmp_path: Path, sendgrid_env: FakeSendGrid
) -> None:
    fake = sendgrid_env
    project, cfg = project_with_readers(make_project, tmp_path)
    build_and_send(cfg)
    # Someone paused it in SendGrid's own console first: a new status is refused (400).
    fake.schedules.set_status({"batch_id": fake.schedules.batch_ids[0], "status": "pause"})
    with time_machine.travel(JOB_START + timedelta(minutes=30), tick=False):
        refused = CliRunner().invoke(app, ["cancel", "2026-W48", *cfg])
        status = json.loads(CliRunner().invoke(app, ["status", "2026-W48", "--json", *cfg]).output)
    assert refused.exit_code == 1
    assert "SendGrid refused to cancel the scheduled send (400" in refused.output
    assert "Traceback" not in refused.output
    assert len(status["scheduled"]) == 5 and "cancelled" not in status
    with project.engine().connect() as conn:
        assert conn.execute(sa.select(editions.c.state)).scalar() == "sent"
