"""What the ledger's dropped foreign keys guarded (migration 0019), held by the code: a
plan puts the same people in the same batches as placing them one by one would, and
writes no row whose subscriber, batch or edition is missing; forgetting someone the
ledger names keeps their (blank) subscriber row; the migration goes both ways."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from digest.audience.privacy import forget
from digest.audience.tokens import Keyring
from digest.config import Secrets
from digest.context import App
from digest.dispatch.morning import morning_for
from digest.dispatch.plan import plan_send
from digest.dispatch.variants import variant_chooser
from digest.lifecycle.states import Kind
from digest.models import RenderedEmail
from digest.store import audience, ledger, open_engine
from digest.store.db import MIGRATIONS
from digest.store.editions import StoredEdition, get_edition, save_edition
from digest.store.tables import (
    batches,
    editions,
    memberships,
    send_recipients,
    subscribers,
    suppressions,
)
from tests.conftest import NOW
from tests.golden_edition import golden_edition
from tests.test_planning import LISTS

CONFIG = (
    LISTS
    + """
[[print.profiles]]
name = "default"
page_cap = 12

[[print.profiles]]
name = "county"
page_cap = 8
"""
)
SLUGS = ["inside", "weekly"]
ZONES = [None, "Pacific/Honolulu", "Europe/Paris", "America/Chicago"]
SECTIONS = [None, "news", "events,news"]
KEY = "planning-integrity-secret-key-0123456789"


def _people(engine: sa.Engine, ids: range, rng: random.Random) -> None:
    """Subscribers of every kind at once: formats, profiles, sections, zones, one list or
    both, some who left a list, some suppressed, some no longer active."""
    people, members, blocked = [], [], []
    for i in ids:
        email = f"p{i}@example.org"
        status = "unsubscribed" if rng.random() < 0.05 else audience.ACTIVE
        people.append(
            {
                "id": i,
                "email": email,
                "email_key": email,
                "name": f"P {i}",
                "status": status,
                "source": "test",
                "created": NOW,
                "timezone": rng.choice(ZONES),
            }
        )
        for slug in rng.sample(SLUGS, rng.choice((1, 1, 2))):
            fmt = "print" if slug == "inside" else rng.choice(("html", "html", "text"))
            members.append(
                {
                    "subscriber_id": i,
                    "list_slug": slug,
                    "status": audience.UNSUBSCRIBED if rng.random() < 0.1 else audience.ACTIVE,
                    "format": fmt,
                    "profile": rng.choice((None, "default", "county")) if fmt == "print" else None,
                    "created": NOW,
                    "sections": rng.choice(SECTIONS),
                }
            )
        if rng.random() < 0.03:
            blocked.append(
                {"email_key": email, "email": email, "reason": "bounced", "origin": "test"}
            )
    with engine.begin() as conn:
        conn.execute(sa.insert(subscribers), people)
        conn.execute(sa.insert(memberships), members)
        if blocked:
            conn.execute(sa.insert(suppressions), [{**b, "created": NOW} for b in blocked])


@pytest.fixture
def app(database_url: str, make_project) -> App:  # type: ignore[no-untyped-def]
    settings = make_project(CONFIG).settings(database_url=database_url)
    settings.delivery.batch_size = 7
    engine = open_engine(settings.database_url, settings.base_dir)
    with engine.begin() as conn:
        audience.sync_lists(conn, settings.lists)
        email = RenderedEmail("Subject", "<p>hi</p>", "hi")
        save_edition(conn, golden_edition(), email, NOW, kind=Kind.WEEKLY)
    return App(settings, engine, Secrets(secret_key=KEY))


def _edition(app: App) -> StoredEdition:
    with app.engine.connect() as conn:
        found = get_edition(conn, golden_edition().id)
    assert found is not None
    return found


def _placed_one_by_one(app: App, edition: StoredEdition) -> list[tuple[int, int]]:
    """(seq, subscriber) of everyone new, as a planner placing each person in turn would:
    by subscriber id, into their own variant and zone's batches (each variant and zone in
    the order its first person comes), ``batch_size`` a batch, numbered on from the last."""
    size = app.settings.delivery.batch_size
    morning = morning_for(app.settings, edition.id)
    assert morning is not None
    with app.engine.connect() as conn:
        variant_of = variant_chooser(app.settings, conn, edition)
        known = set(
            conn.execute(
                sa.select(send_recipients.c.subscriber_id).where(
                    send_recipients.c.edition_id == edition.id
                )
            ).scalars()
        )
        seq = ledger.next_seq(conn, edition.id)
        buckets: dict[tuple[str, str], list[int]] = {}
        for person in audience.recipients_for(conn, SLUGS):
            if person.id not in known:
                where = (variant_of(person), morning.plan_for(person, NOW)[0])
                buckets.setdefault(where, []).append(person.id)
    pairs = []
    for ids in buckets.values():
        for start in range(0, len(ids), size):
            pairs += [(seq, sid) for sid in ids[start : start + size]]
            seq += 1
    return pairs


def _planned(app: App, edition: StoredEdition, after_seq: int) -> list[tuple[int, int]]:
    query = (
        sa.select(batches.c.seq, send_recipients.c.subscriber_id)
        .join(batches, batches.c.id == send_recipients.c.batch_id)
        .where(send_recipients.c.edition_id == edition.id, batches.c.seq > after_seq)
        .order_by(batches.c.seq, send_recipients.c.subscriber_id)
    )
    with app.engine.connect() as conn:
        return [(seq, sid) for seq, sid in conn.execute(query)]


def _orphans(app: App) -> list[tuple[str, int]]:
    """Ledger rows naming a subscriber, batch or edition that is not there."""
    r = send_recipients
    missing = (
        ("subscriber", subscribers.c.id == r.c.subscriber_id),
        ("batch", sa.and_(batches.c.id == r.c.batch_id, batches.c.edition_id == r.c.edition_id)),
        ("edition", editions.c.id == r.c.edition_id),
    )
    found = []
    with app.engine.connect() as conn:
        for what, on in missing:
            query = sa.select(r.c.subscriber_id).where(~sa.exists().where(on))
            found += [(what, sid) for sid in conn.execute(query).scalars()]
    return found


def test_a_plan_places_everyone_as_one_by_one_and_names_only_rows_that_exist(app: App) -> None:
    rng = random.Random(18)
    _people(app.engine, range(1, 301), rng)
    edition = _edition(app)
    expected = _placed_one_by_one(app, edition)
    plan = plan_send(app, edition, SLUGS, transport="outbox", now=NOW, dry_run=False)
    assert _planned(app, edition, 0) == expected
    assert sum(plan.new_recipients.values()) == len(expected) > 200
    assert len({seq for seq, _ in expected}) == plan.new_batches > 20
    # People already in the ledger stay where they are; the newcomers go on after them.
    _people(app.engine, range(301, 451), rng)
    last = max(seq for seq, _ in expected)
    later = _placed_one_by_one(app, _edition(app))
    plan_send(app, _edition(app), SLUGS, transport="outbox", now=NOW, dry_run=False)
    assert _planned(app, edition, 0) == expected + later
    assert later and min(seq for seq, _ in later) == last + 1
    assert _orphans(app) == []


def test_forgetting_someone_the_ledger_names_keeps_their_row_and_the_ledger_whole(
    app: App,
) -> None:
    _people(app.engine, range(1, 80), random.Random(5))
    edition = _edition(app)
    plan_send(app, edition, SLUGS, transport="outbox", now=NOW, dry_run=False)
    rows = _planned(app, edition, 0)
    sent_seq = rows[0][0]
    with app.engine.begin() as conn:  # the first batch went out; the rest wait
        conn.execute(
            sa.update(batches)
            .where(batches.c.edition_id == edition.id, batches.c.seq == sent_seq)
            .values(state=ledger.ACCEPTED)
        )
    sent = rows[0][1]
    waiting = next(sid for seq, sid in rows if seq != sent_seq)
    keys = Keyring(KEY.encode())
    for sid in (sent, waiting):
        forget(app.engine, keys, f"p{sid}@example.org", who="test", now=NOW)
    with app.engine.connect() as conn:
        kept = conn.execute(sa.select(subscribers).where(subscribers.c.id == sent)).one()
        names = conn.execute(
            sa.select(send_recipients.c.email, send_recipients.c.name).where(
                send_recipients.c.subscriber_id == sent
            )
        ).all()
        gone = conn.execute(sa.select(subscribers).where(subscribers.c.id == waiting)).all()
        left = conn.execute(
            sa.select(send_recipients).where(send_recipients.c.subscriber_id == waiting)
        ).all()
    assert (kept.email, kept.status) == ("", audience.FORGOTTEN)
    assert names == [("", "")]
    assert (gone, left) == ([], [])  # never sent: out of the ledger, and gone
    assert _orphans(app) == []
    assert len(_planned(app, edition, 0)) == len(rows) - 1


def _constraints(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        found = sa.inspect(conn).get_foreign_keys("send_recipients")
    return sorted((f["constrained_columns"][0], f["referred_table"]) for f in found)


def test_the_migration_drops_the_ledger_rows_checks_and_gives_them_back(
    app: App, tmp_path: Path
) -> None:
    _people(app.engine, range(1, 30), random.Random(7))
    plan_send(app, _edition(app), SLUGS, transport="outbox", now=NOW, dry_run=False)
    before = _planned(app, _edition(app), 0)
    assert _constraints(app.engine) == []
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with app.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0018")
    assert _constraints(app.engine) == [
        ("batch_id", "batches"),
        ("edition_id", "editions"),
        ("subscriber_id", "subscribers"),
    ]
    assert _planned(app, _edition(app), 0) == before
    with app.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert _constraints(app.engine) == []
    assert _planned(app, _edition(app), 0) == before
