"""Special alerts: a Markdown message rendered like the digest and sent through the same ledger."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from email_validator import EmailNotValidError
from markdown_it import MarkdownIt
from sqlalchemy.engine import Engine

from digest.audience.importer import email_key
from digest.collect.sanitize import clean_html, html_to_text, one_line
from digest.config import Secrets, Settings
from digest.dispatch.batch import Transport
from digest.dispatch.copies import send_copies
from digest.dispatch.plan import list_slugs
from digest.errors import DeliveryError, DigestError
from digest.models import Edition, Recipient, RenderedEmail
from digest.render import check_email
from digest.render.html import compile_mjml, inline_css, render_mjml
from digest.render.templates import longdate, text_env
from digest.render.text import References, wrap
from digest.store import editions

_MARKDOWN = MarkdownIt("commonmark", {"html": False})
MAX_BODY_BYTES = 200_000


ALERT_ID = re.compile(r"^alert-\d{8}-\d{6}$")


def alert_id(now: datetime) -> str:
    """Alerts get their own ids, apart from the weekly ``2026-W48`` ones."""
    return f"alert-{now:%Y%m%d-%H%M%S}"


def is_alert(edition_id: str) -> bool:
    return edition_id.startswith("alert-")


def read_body(path: Path) -> str:
    """The alert's Markdown, or one clear error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DigestError(f"{path}: cannot read the alert body ({exc.strerror})") from None
    if len(raw) > MAX_BODY_BYTES:
        raise DigestError(f"{path}: the alert body is over {MAX_BODY_BYTES // 1000} KB: shorten it")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DigestError(f"{path}: not UTF-8 text: save the alert as UTF-8 Markdown") from None
    if not text.strip():
        raise DigestError(f"{path}: the alert body is empty: write the message in it")
    return text


def render_alert(
    settings: Settings, subject: str, markdown: str, *, alert: str, now: datetime
) -> RenderedEmail:
    """The alert's HTML (its own MJML template, the digest's header and footer) and text."""
    subject = one_line(subject)
    if not subject:
        raise DigestError("the subject is empty: give the alert a subject line")
    org = settings.organisation
    archive_url = f"{settings.delivery.base_url}/archive/{alert}"
    body_html = clean_html(_MARKDOWN.render(markdown))
    local = now.astimezone(org.zone)
    mjml = render_mjml(
        "email/alert.mjml.j2",
        org=org,
        subject=subject,
        preheader=html_to_text(body_html)[:140],
        archive_url=archive_url,
        body_html=body_html,
        heading=f"Action alert, {longdate(local)}",
        reason=f"You are receiving this because you signed up for {org.name} action alerts.",
    )
    refs = References()
    text = (
        text_env()
        .get_template("email/alert.txt.j2")
        .render(
            org=org,
            subject=subject,
            archive_url=archive_url,
            date=local,
            wrap=wrap,
            refs=refs,
            body=html_to_text(body_html, refs.number),
        )
    )
    text = "\n".join(line.rstrip() for line in text.strip().split("\n")) + "\n"
    email = RenderedEmail(subject, inline_css(compile_mjml(mjml)), text)
    check_email(email, settings)
    return email


def store_alert(
    engine: Engine, settings: Settings, alert: str, email: RenderedEmail, now: datetime
) -> None:
    """Keep the alert like an edition, so the ledger, status and archive know it."""
    record = Edition(
        id=alert,
        subject=email.subject,
        preheader="",
        since=now,
        cutoff=now,
        editor_note=None,
        sections=(),
        archive_url=f"{settings.delivery.base_url}/archive/{alert}",
    )
    with engine.begin() as conn:
        editions.save_edition(conn, record, email, now)


def send_test(
    settings: Settings,
    secrets: Secrets,
    email: RenderedEmail,
    transport: Transport,
    address: str,
    list_slug: str | None,
    now: datetime,
) -> str:
    """One copy, marked [TEST], to one address: nothing recorded in the ledger. The address."""
    try:
        given, _ = email_key(address)
    except EmailNotValidError as exc:
        raise DeliveryError(f"test address {address!r} is not an email address: {exc}") from None
    slug = list_slug or list_slugs(settings, None, "alerts")[0]
    send_copies(
        settings,
        secrets,
        email,
        transport,
        [Recipient(0, given, "")],
        list_slug=slug,
        mark="[TEST]",
        now=now,
        label="test",
    )
    return given
