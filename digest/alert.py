"""Special alerts: a Markdown message rendered like the digest (its life: ``lifecycle.alerts``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from markdown_it import MarkdownIt

from digest.collect.sanitize import clean_html, html_to_text, one_line
from digest.config import Settings
from digest.errors import DigestError
from digest.models import RenderedEmail
from digest.render import check_email
from digest.render.branding import email_branding
from digest.render.html import compile_mjml, inline_css, render_mjml
from digest.render.markdown_text import markdown_text
from digest.render.templates import longdate, text_env
from digest.render.text import References, wrap
from digest.urls import Urls

_MARKDOWN = MarkdownIt("commonmark", {"html": False})
MAX_BODY_BYTES = 200_000


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
    settings: Settings, urls: Urls, subject: str, markdown: str, *, alert: str, now: datetime
) -> RenderedEmail:
    """The alert's HTML (its own MJML template, the digest's header and footer) and text."""
    subject = one_line(subject)
    if not subject:
        raise DigestError("the subject is empty: give the alert a subject line")
    org = settings.organisation
    local = now.astimezone(org.zone)
    return render_message(
        settings,
        subject=subject,
        markdown=markdown,
        heading=f"Action alert, {longdate(local)}",
        reason=f"You are receiving this because you signed up for {org.name} action alerts.",
        archive_url=urls.archive(alert),
        text_template="email/alert.txt.j2",
        date=local,
    )


def render_message(
    settings: Settings,
    *,
    subject: str,
    markdown: str,
    heading: str,
    reason: str,
    archive_url: str,
    text_template: str,
    **text_values: object,
) -> RenderedEmail:
    """A Markdown message in the alert's frame (the digest's header, footer, postal address
    and links): HTML through MJML and inlined CSS, and its own text part. Alerts and the
    lists' welcomes both go this way."""
    org = settings.organisation
    body_html = clean_html(_MARKDOWN.render(markdown))
    mjml = render_mjml(
        "email/alert.mjml.j2",
        org=org,
        subject=subject,
        preheader=html_to_text(body_html)[:140],
        archive_url=archive_url,
        body_html=body_html,
        heading=heading,
        reason=reason,
        brand=email_branding(settings),
    )
    refs = References()
    text = (
        text_env()
        .get_template(text_template)
        .render(
            org=org,
            subject=subject,
            heading=heading,
            reason=reason,
            archive_url=archive_url,
            wrap=wrap,
            refs=refs,
            body=markdown_text(_MARKDOWN, markdown, refs),
            footer_links=settings.branding.footer_links,
            **text_values,
        )
    )
    text = "\n".join(line.rstrip() for line in text.strip().split("\n")) + "\n"
    email = RenderedEmail(subject, inline_css(compile_mjml(mjml)), text)
    check_email(email, settings)
    return email
