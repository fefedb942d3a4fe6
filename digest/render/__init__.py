"""Render: an Edition into email HTML and plain text, rendered once, checked before use."""

from __future__ import annotations

from digest.config import Settings
from digest.errors import RenderError
from digest.models import Edition, RenderedEmail
from digest.render.branding import edition_title, email_branding
from digest.render.html import compile_mjml, inline_css, render_mjml
from digest.render.templates import longdate
from digest.render.text import render_text

MAX_HTML_BYTES = 100 * 1024  # Gmail clips messages near 102 KB
UNSUBSCRIBE = "-unsubscribe_url-"
PREFERENCES = "-preferences_url-"
NAME = "-name-"


def digest_context(edition: Edition, settings: Settings, chosen: str = "") -> dict[str, object]:
    """What the digest's MJML template is given (``chosen``: a section variant's sections,
    named, for the line that says so)."""
    zone = settings.organisation.zone
    return {
        "edition": edition,
        "org": settings.organisation,
        "zone": zone,
        "subject": edition.subject,
        "preheader": edition.preheader,
        "archive_url": edition.archive_url,
        "heading": f"{edition_title(settings)}, {longdate(edition.last_moment.astimezone(zone))}",
        "brand": email_branding(settings),
        "chosen": chosen,
        "reason": f"You are receiving this because you subscribed to the "
        f"{settings.organisation.name} weekly digest.",
    }


def render_email(edition: Edition, settings: Settings, *, chosen: str = "") -> RenderedEmail:
    """The edition's HTML and text parts, each checked (see :func:`check_email`);
    ``chosen`` names the sections of a section variant (say, "News and Events")."""
    mjml = render_mjml("email/digest.mjml.j2", **digest_context(edition, settings, chosen))
    html = inline_css(compile_mjml(mjml))
    text = render_text(edition, settings, chosen=chosen)
    email = RenderedEmail(edition.subject, html, text)
    check_email(email, settings)
    return email


def check_email(email: RenderedEmail, settings: Settings) -> None:
    """Refuse to produce an email that would be clipped or lacks the address or unsubscribe link."""
    size = len(email.html.encode())
    if size > MAX_HTML_BYTES:
        raise RenderError(
            f"the HTML email is {size / 1024:.0f} KB, over the {MAX_HTML_BYTES // 1024} KB limit "
            "(Gmail clips it): lower edition.max_items_per_section or collect.summary_chars"
        )
    address = settings.organisation.postal_address.strip()
    if not address:
        raise RenderError(
            "organisation.postal_address is empty: anti-spam law requires a postal "
            "address in every email; set it in config.toml"
        )
    first_line = address.splitlines()[0].strip()
    for part, body in (("HTML", email.html), ("text", email.text)):
        if UNSUBSCRIBE not in body:
            raise RenderError(
                f"the {part} part has no unsubscribe link ({UNSUBSCRIBE}): "
                "restore it in the email templates"
            )
        if first_line not in body and _escaped(first_line) not in body:
            raise RenderError(
                f"the {part} part does not show the postal address: "
                "restore it in the email templates"
            )


def _escaped(text: str) -> str:
    from html import escape

    return escape(text, quote=False)
