"""Delivering a planned edition: what each variant carries, then the workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from digest.config import PrintProfile
from digest.dispatch.batch import Outcome, Transport
from digest.dispatch.plan import SendPlan
from digest.dispatch.processes import (
    WorkerPool,
    WorkerSpec,
    deliver_in_processes,
    process_count,
)
from digest.dispatch.run import Content, RunReport, SendRun, deliver_all, mark_abandoned
from digest.dispatch.variants import CHOICE, PRINT
from digest.lifecycle.states import Kind
from digest.models import Attachment, RenderedEmail
from digest.render.emessage import ascii_fold
from digest.render.print_edition import files_for, print_notice
from digest.render.section_variants import stored_email
from digest.store import audience, ledger
from digest.store.editions import get_files, variant_files

if TYPE_CHECKING:
    from digest.context import App

log = logging.getLogger(__name__)
CUT = "\n\n[The rest did not fit in one message: read it at the link above.]\n"
LINK_ROOM = 2 * 160  # what two personal links add to their placeholders, at most


def contents(app: App, plan: SendPlan) -> dict[str, Content]:
    """The digest for html and text members; per print profile, a short note with its files;
    the same again for each section variant the build rendered (``html~events``, ...)."""
    settings = app.settings
    edition = plan.edition
    out = {"html": Content(edition.email), "text": Content(edition.email)}
    with app.engine.connect() as conn:
        files = get_files(conn, edition.id)
        variants = variant_files(conn, edition.id) if edition.kind == Kind.WEEKLY else {}
    archive_url = app.urls.archive(edition.id)
    for profile in settings.print.profiles:
        mine = files_for(profile, files)
        if not mine:
            # An alert (or an edition built before this profile existed): the text alone,
            # cut to what the facility's messaging service takes.
            out[f"{PRINT}:{profile.name}"] = Content(text_only(edition.email, profile))
            continue
        out[f"{PRINT}:{profile.name}"] = _print_content(app, plan, profile, mine, archive_url)
    for token, stored in variants.items():
        email = stored_email(stored)
        if email is not None:
            for base in ("html", "text"):
                out[f"{base}{CHOICE}{token}"] = Content(email)
        for profile in settings.print.profiles:
            mine = files_for(profile, stored)
            if mine:
                variant = f"{PRINT}:{profile.name}{CHOICE}{token}"
                out[variant] = _print_content(app, plan, profile, mine, archive_url)
    return out


def _print_content(
    app: App, plan: SendPlan, profile: PrintProfile, files: list[Attachment], archive_url: str
) -> Content:
    notice = print_notice(
        app.settings,
        profile,
        subject=plan.edition.subject,
        cutoff=plan.edition.cutoff,
        archive_url=archive_url,
        files=files,
    )
    return Content(notice, tuple(files))


def text_only(email: RenderedEmail, profile: PrintProfile) -> RenderedEmail:
    """The text part within the profile's e-message limit; the footer (unsubscribe link,
    postal address) always kept, the body cut at a line if it must be."""
    text = ascii_fold(email.text) if profile.ascii_only else email.text
    body, rule, footer = text.rpartition("\n" + "-" * 72 + "\n")
    if not rule:
        body, footer = text, ""
    tail = rule + footer
    # The unsubscribe and preferences placeholders grow into full links per recipient.
    room = profile.emessage_chars - LINK_ROOM
    limit = room - len(tail) - len(CUT)
    if len(text) > room and limit > 0:
        body = body[:limit].rsplit("\n", 1)[0] + CUT
    return RenderedEmail(email.subject, "", body + tail)


def deliver(
    app: App,
    plan: SendPlan,
    transport: Transport,
    *,
    stop: threading.Event | None = None,
    resend_uncertain: bool = False,
    on_batch: Callable[[int, Outcome, int], None] | None = None,
    ahead: WorkersAhead | None = None,
) -> RunReport:
    """Send every pending batch of the plan's edition; failed ones are tried again. Only
    the lifecycle's send calls this.

    Batches left in flight by a process that died become uncertain and are sent
    again only with ``resend_uncertain`` (staff decided duplicates beat silence).
    ``ahead``: worker processes started while the plan ran, used if the send is big.
    """
    edition_id = plan.edition.id
    now = app.clock()
    mark_abandoned(app.engine, edition_id, now)
    with app.engine.begin() as conn:
        ledger.requeue(conn, edition_id, ledger.FAILED, now)
        if resend_uncertain:
            ledger.requeue(conn, edition_id, ledger.UNCERTAIN, now)
    run = SendRun(
        app.settings,
        app.engine,
        edition_id,
        contents(app, plan),
        app.keys,
        transport,
        app.clock,
        stop or threading.Event(),
        on_batch,
    )
    with app.engine.connect() as conn:
        pending, _ = ledger.pending(conn, edition_id)
    processes = process_count(app.settings, pending, transport.name)
    pool = ahead.pool() if ahead is not None else None
    if pool is not None and processes > 1:
        return pool.deliver(run, min(processes, pool.size))
    if pool is not None:
        pool.close()  # small after all: the threads alone
    if processes > 1:
        return deliver_in_processes(run, app.secrets, processes)
    return deliver_all(run)


class WorkersAhead:
    """The worker processes of a send that will be big, started while it plans, so they
    are ready when delivery begins: a thread counts the lists' members (and the batches
    the ledger holds already) and starts a :class:`WorkerPool` when :func:`process_count`
    says more than one for that many batches. The plan runs on one core meanwhile; the
    count and the workers' imports take the other. Leaving the block dismisses whatever
    delivery did not use (a plan that failed, found too few, a send refused or stopped).
    """

    def __init__(
        self, app: App, edition_id: str, slugs: list[str], transport: str, now: datetime
    ) -> None:
        self._app, self._edition_id, self._slugs = app, edition_id, slugs
        self._transport, self._now = transport, now
        self._lock = threading.Lock()
        self._closed = False
        self._pool: WorkerPool | None = None
        self._thread = threading.Thread(target=self._start, name="digest-workers-ahead")

    def __enter__(self) -> WorkersAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._closed = True
        self._thread.join()
        if self._pool is not None:
            self._pool.close()

    def pool(self) -> WorkerPool | None:
        """The started pool, once the count is done; None for a send the count found small."""
        self._thread.join()
        return self._pool

    def _start(self) -> None:
        app = self._app
        try:
            with app.engine.connect() as conn:
                batches, _ = ledger.pending(conn, self._edition_id)
                if self._slugs:
                    members = audience.member_count(conn, self._slugs)
                    batches += -(-members // app.settings.delivery.batch_size)
        except Exception as exc:  # the send goes on: its workers start when delivery does
            log.warning("edition %s: could not count its audience: %s", self._edition_id, exc)
            return
        processes = process_count(app.settings, batches, self._transport)
        if processes <= 1:
            return
        spec = WorkerSpec(app.settings, app.secrets, self._edition_id, app.keys, self._now)
        with self._lock:
            if not self._closed:
                self._pool = WorkerPool(spec, processes).__enter__()
