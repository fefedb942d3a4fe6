"""/healthz's latest edition comes from a query of its id and state alone
(editions.latest_state): it names the same edition, in the same state, as the whole
edition read through get_edition did, whatever was built last and in which state."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from digest.config import Secrets
from digest.health import health
from digest.lifecycle.states import Kind, State, store_edition, transition
from digest.store import editions
from tests.conftest import NOW
from tests.golden_edition import golden_edition, render_golden

KEY = "health-latest-secret-key-0123456789abcdef"


def _reported(project) -> dict[str, object]:
    return health(project.app(NOW, Secrets(secret_key=KEY))).facts["latest_edition"]


def _as_before(conn) -> dict[str, object]:
    """What /healthz reported before: the whole latest edition read, its id and state."""
    whole = editions.get_edition(conn, None, latest_of=Kind.WEEKLY)
    return {"id": whole.id if whole else None, "state": whole.state if whole else None}


def test_latest_edition_is_the_one_get_edition_finds(make_project) -> None:
    project = make_project()
    engine = project.engine()
    with engine.connect() as conn:
        assert editions.latest_state(conn, Kind.WEEKLY) is None
    assert _reported(project) == {"id": None, "state": None}

    email, first = render_golden(), golden_edition()
    second = dataclasses.replace(first, id="2026-W49")
    alert = dataclasses.replace(first, id="alert-1")
    steps = [
        lambda c: store_edition(c, first, email, kind=Kind.WEEKLY, who="t", now=NOW),
        lambda c: transition(c, first.id, State.FAILED, who="t", now=NOW),
        # An alert built later is not the latest week.
        lambda c: store_edition(
            c, alert, email, kind=Kind.ALERT, who="t", now=NOW + timedelta(days=1)
        ),
        lambda c: store_edition(
            c, second, email, kind=Kind.WEEKLY, who="t", now=NOW + timedelta(days=7)
        ),
        lambda c: transition(c, second.id, State.SENDING, who="t", now=NOW),
    ]
    seen = []
    for step in steps:
        with engine.begin() as conn:
            step(conn)
        with engine.connect() as conn:
            before = _as_before(conn)
        assert _reported(project) == before
        seen.append(before)
    assert seen == [
        {"id": first.id, "state": "built"},
        {"id": first.id, "state": "failed"},
        {"id": first.id, "state": "failed"},
        {"id": second.id, "state": "built"},
        {"id": second.id, "state": "sending"},
    ]
    engine.dispose()


def test_a_failed_latest_edition_still_makes_healthz_unwell(make_project) -> None:
    project = make_project()
    engine = project.engine()
    edition = golden_edition()
    with engine.begin() as conn:
        store_edition(conn, edition, render_golden(), kind=Kind.WEEKLY, who="t", now=NOW)
        transition(conn, edition.id, State.FAILED, who="t", now=NOW)
    engine.dispose()
    report = health(project.app(NOW, Secrets(secret_key=KEY)))
    assert f"edition {edition.id} failed: see 'digest status {edition.id}'" in report.problems
