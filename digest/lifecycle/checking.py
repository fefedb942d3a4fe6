"""The checks before a send, one step of an edition's life between built and approved
or sending: its links, its spam score and its accessibility.

Each check stores a verdict on the content it saw (a hash of the rendered email):
``ok``, ``warn`` or ``block`` (a problem, and what ``[checks]`` says to do with it), or
``skipped``. A ``block`` keeps the edition from being approved or sent (the lifecycle's
``transition`` refuses, see :func:`refusal`) until staff fix the problem, which changes
the content and so calls for new checks, or override it with a reason, recorded in the
edition's history. Checks run again whenever the content or the policy has changed
since (:func:`ensure_checked`, called before every approval and send).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from digest.config import Settings
from digest.errors import DeliveryError
from digest.models import Edition, RenderedEmail
from digest.store import checks as stored
from digest.store import editions
from digest.store.checks import Override, StoredCheck

NAMES = ("links", "spam", "accessibility", "size")
CLIPPED_AT = 102 * 1024  # bytes of HTML past which Gmail clips a message
OK, WARN, BLOCK, SKIPPED = "ok", "warn", "block", "skipped"
# A link that is broken is a problem; one that did not answer may be down for an hour.
BAD_LINKS = ("broken",)
DOUBTFUL_LINKS = ("unreachable", "skipped")


Outcome = tuple[str, str, dict[str, Any]]  # verdict, summary, details


@dataclass(frozen=True, slots=True)
class Checked:
    """What every check is given: the edition as stored, and where and when it runs."""

    settings: Settings
    engine: Engine
    edition: Edition
    email: RenderedEmail
    now: datetime


@dataclass(frozen=True, slots=True)
class CheckReport:
    """An edition's checks as stored, against the content it has now."""

    edition_id: str
    content_hash: str
    checks: tuple[StoredCheck, ...]
    overrides: tuple[Override, ...] = ()

    @property
    def stale(self) -> bool:
        """Never checked, or changed since."""
        return not self.checks or any(c.content_hash != self.content_hash for c in self.checks)

    @property
    def blocking(self) -> list[StoredCheck]:
        return [c for c in self.checks if c.verdict == BLOCK]

    @property
    def override(self) -> Override | None:
        """The override given for this content, if any."""
        return next((o for o in self.overrides if o.content_hash == self.content_hash), None)

    @property
    def blocked(self) -> bool:
        return bool(self.blocking) and self.override is None

    @property
    def warnings(self) -> list[StoredCheck]:
        return [c for c in self.checks if c.verdict == WARN]

    def named(self, name: str) -> StoredCheck | None:
        return next((c for c in self.checks if c.name == name), None)

    def lines(self) -> list[str]:
        """One line per check, for a terminal or a plain-text email."""
        return [f"{c.name}: {c.verdict}: {c.summary}" for c in self.checks]


def content_hash(email: RenderedEmail) -> str:
    data = "\x00".join((email.subject, email.html, email.text)).encode()
    return hashlib.sha256(data).hexdigest()


def report_of(conn: Connection, edition_id: str) -> CheckReport:
    stored_edition = editions.get_edition(conn, edition_id)
    digest = content_hash(stored_edition.email) if stored_edition else ""
    found = sorted(
        stored.checks_of(conn, edition_id),
        key=lambda c: NAMES.index(c.name) if c.name in NAMES else len(NAMES),
    )
    return CheckReport(
        edition_id,
        digest,
        tuple(found),
        tuple(stored.overrides_of(conn, edition_id)),
    )


def ensure_checked(
    settings: Settings, engine: Engine, edition_id: str, now: datetime
) -> CheckReport:
    """The edition's checks, run again when its content or a check's policy has changed."""
    with engine.connect() as conn:
        report = report_of(conn, edition_id)
    policies = {c.name: c.details.get("policy") for c in report.checks}
    wanted = {name: settings.checks.policy_of(name) for name in NAMES}
    if report.stale or policies != wanted:
        return run_checks(settings, engine, edition_id, now)
    return report


def run_checks(
    settings: Settings,
    engine: Engine,
    edition_id: str,
    now: datetime,
    progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Run every check on the stored edition and store the verdicts."""
    with engine.connect() as conn:
        found = editions.get_edition(conn, edition_id)
        edition = editions.edition_of(conn, edition_id)
    if found is None or edition is None:
        raise DeliveryError(f"edition {edition_id!r} has not been built: run 'digest build'")
    digest = content_hash(found.email)
    results = []
    for name in NAMES:
        policy = settings.checks.policy_of(name)
        if policy == "off":
            outcome: Outcome = (SKIPPED, f'off in config.toml ([checks] {name} = "off")', {})
        else:
            if progress is not None:
                progress(name)
            outcome = _CHECKS[name](Checked(settings, engine, edition, found.email, now), policy)
        verdict, summary, details = outcome
        results.append(
            StoredCheck(name, verdict, summary, details | {"policy": policy}, digest, now)
        )
    with engine.begin() as conn:
        for result in results:
            stored.save_check(conn, edition_id, result)
        return report_of(conn, edition_id)


# Each check's module (httpx, lxml, the message builder) loads only when the check runs:
# a build whose checks are off, or a report read back, needs none of them.
def _links(the: Checked, policy: str) -> Outcome:
    from digest.checks.edition_links import links_of
    from digest.checks.links import check_links_cached

    found = links_of(the.edition, the.email, the.settings.delivery.base_url)
    results = check_links_cached(the.engine, [f.url for f in found], the.settings, the.now)
    rows: list[dict[str, Any]] = []
    for link in found:
        r = results[link.url]
        rows.append(
            {
                "url": link.url,
                "where": link.where,
                "outcome": r.outcome,
                "status": r.status,
                "final_url": r.final_url,
                "detail": r.detail,
            }
        )
    distinct = {r["url"]: r["outcome"] for r in rows}
    bad = sorted(u for u, o in distinct.items() if o in BAD_LINKS)
    doubtful = sorted(u for u, o in distinct.items() if o in DOUBTFUL_LINKS)
    counts = [f"{len(bad)} broken"] if bad else []
    counts += [f"{len(doubtful)} did not answer"] if doubtful else []
    summary = f"{len(distinct)} link(s) checked: " + (", ".join(counts) or "all answer")
    verdict = policy if bad else (WARN if doubtful else OK)
    return verdict, summary, {"links": rows}


def _spam(the: Checked, policy: str) -> Outcome:
    from digest.checks import spam

    threshold = the.settings.checks.spam_threshold
    try:
        result = spam.score(spam.sample_message(the.settings, the.email, the.now))
    except spam.SpamCheckUnavailable as exc:
        return WARN, f"not run: {exc}", {}
    hits = [
        {"rule": r.name, "points": r.points, "description": r.description} for r in result.rules
    ]
    scored = [h for h in hits if h["points"]]
    top = ", ".join(f"{h['rule']} {h['points']:+.1f}" for h in scored[:4])
    summary = f"{result.points:.1f} points (at most {threshold:g})" + (f": {top}" if top else "")
    verdict = policy if result.points > threshold else OK
    return verdict, summary, {"points": result.points, "rules": hits}


def _accessibility(the: Checked, policy: str) -> Outcome:
    from digest.checks import accessibility

    pairs = accessibility.colour_pairs(the.settings.branding.colour)
    findings = accessibility.check_html(the.email.html, pairs)
    if not findings:
        return OK, "every rule passes", {"findings": []}
    rows = [{"rule": f.rule, "what": f.what} for f in findings]
    summary = f"{len(findings)} problem(s): " + "; ".join(f.what for f in findings[:3])
    return policy, summary, {"findings": rows}


def _size(the: Checked, policy: str) -> Outcome:
    size = len(the.email.html.encode())
    summary = f"{size / 1024:.1f} KB of HTML (Gmail clips past {CLIPPED_AT // 1024} KB)"
    if size <= CLIPPED_AT:
        return OK, summary, {"bytes": size}
    return policy, summary + ": cut stories or lower edition.max_items_per_section", {"bytes": size}


_CHECKS = {"links": _links, "spam": _spam, "accessibility": _accessibility, "size": _size}


def problems_of(check: StoredCheck) -> list[str]:
    """What a check found, one line each: a link with its item, a rule with its points,
    an accessibility finding."""
    details = check.details
    if check.name == "links":
        return [
            f"{x['outcome']}: {x['url']} ({x['detail'] or x['final_url']}) in {x['where']}"
            for x in details.get("links", [])
            if x["outcome"] not in ("ok",)
        ]
    if check.name == "spam":
        return [
            f"{x['rule']} {x['points']:+.1f}: {x['description']}"
            for x in details.get("rules", [])
            if x["points"] > 0
        ]
    return [f"{x['rule']}: {x['what']}" for x in details.get("findings", [])]


def refusal(conn: Connection, edition_id: str) -> str | None:
    """Why the edition may not be approved or sent, or None: a blocking check not
    overridden for the content it has now."""
    report = report_of(conn, edition_id)
    return refusal_of(report) if report.blocked else None


def refusal_of(report: CheckReport) -> str:
    why = "; ".join(f"{c.name}: {c.summary}" for c in report.blocking)
    eid = report.edition_id
    return (
        f"edition {eid} is held by its checks ({why}): fix it and build it again, or "
        "override it with a reason: --override REASON on 'digest send' or 'digest approve', "
        "or on the console's edition page"
    )


def override(conn: Connection, edition_id: str, *, who: str, reason: str, now: datetime) -> None:
    """Staff send a blocked edition anyway: who, why and for which content, in its
    history."""
    reason = " ".join(reason.split())
    if not reason:
        raise DeliveryError("an override needs a reason: say why it may go as it is")
    report = report_of(conn, edition_id)
    if not report.blocking:
        raise DeliveryError(f"edition {edition_id} is not held by its checks: nothing to override")
    names = ", ".join(c.name for c in report.blocking)
    stored.add_override(conn, edition_id, Override(who, reason, now, report.content_hash))
    editions.record_note(
        conn, edition_id, who=who, now=now, note=f"checks overridden ({names}): {reason}"
    )


NOTICE_PROBLEMS = 5  # per check, in the staff preview; the console shows them all


def with_check_notice(email: RenderedEmail, report: CheckReport, page: str) -> RenderedEmail:
    """The staff preview of an edition: what its checks found, before the email itself."""
    found = [c for c in report.checks if c.verdict in (WARN, BLOCK)]
    if not found:
        return email
    head = (
        "Held by its checks: it goes only when fixed, or overridden with a reason."
        if report.blocked
        else "Its checks found something to look at before it goes."
    )
    checks = [(f"{c.name} ({c.verdict}): {c.summary}", problems_of(c)) for c in found]
    text_lines = [head]
    items = []
    for line, problems in checks:
        shown = problems[:NOTICE_PROBLEMS] + (
            [f"and {len(problems) - NOTICE_PROBLEMS} more"]
            if len(problems) > NOTICE_PROBLEMS
            else []
        )
        text_lines += [f"- {line}", *(f"    {p}" for p in shown)]
        inner = "".join(f"<li>{html.escape(p)}</li>" for p in shown)
        items.append(
            f"<li>{html.escape(line)}"
            + (
                f'<ul style="margin:0; padding-left:18px; font-size:14px">{inner}</ul>'
                if inner
                else ""
            )
            + "</li>"
        )
    text_lines.append(f"Details and the override: {page}")
    text = "\n".join(text_lines) + "\n\n" + "-" * 40 + "\n\n" + email.text
    box = (
        '<div role="note" style="max-width:568px; margin:12px auto; padding:12px 16px; '
        "border:2px solid #1a1a1a; background:#ffffff; color:#1a1a1a; "
        'font:16px/1.5 Arial, sans-serif; word-break:break-word">'
        f'<p style="margin:0 0 6px"><strong>{html.escape(head)}</strong></p>'
        f'<ul style="margin:0 0 6px; padding-left:20px">{"".join(items)}</ul>'
        f'<p style="margin:0"><a href="{html.escape(page)}" style="color:#0b5394">'
        "See the details and decide on the edition's page</a></p></div>"
    )
    body = re.search(r"<body[^>]*>", email.html)
    at = body.end() if body else 0
    return RenderedEmail(email.subject, email.html[:at] + box + email.html[at:], text)


def held_editions(conn: Connection) -> set[str]:
    """The editions (and alerts) a blocking check holds now, for the dashboard."""
    return {eid for eid in stored.ids_with_verdict(conn, BLOCK) if report_of(conn, eid).blocked}
