"""The organisation's look in every email and print edition: the name at the head of an
edition, the logo (served by the web app, never fetched from elsewhere), the colour and the
footer links.

One owner for each: the templates get what :func:`email_branding` returns, the web app
serves :func:`logo_file` at :func:`logo_path`.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from typing import Literal

from digest.config import Settings
from digest.config_branding import FooterLink, LogoFile, read_logo

DEFAULT_TITLE = "Weekly digest"
LOGO_FOLDER = "/brand"


def edition_title(settings: Settings, medium: Literal["email", "print"] = "email") -> str:
    """What heads an edition: the name of the first ``[[lists]]`` entry of kind digest (for
    print, of kind print if there is one, else that digest one); "Weekly digest" without.

    A weekly edition goes to several lists; the first one named is the one readers know.
    """
    kinds = ("print", "digest") if medium == "print" else ("digest",)
    for kind in kinds:
        for entry in settings.lists:
            if entry.kind == kind and entry.name.strip():
                return " ".join(entry.name.split())
    return DEFAULT_TITLE


def logo_file(settings: Settings) -> LogoFile | None:
    """The configured logo's bytes and type, or None when there is no logo."""
    logo = settings.branding.logo
    return read_logo(settings.resolve(logo)) if logo else None


def logo_path(logo: LogoFile) -> str:
    """Where the web app serves the logo: a fixed path, its ending the file's type."""
    return f"{LOGO_FOLDER}/logo.{logo.suffix}"


@dataclass(frozen=True, slots=True)
class EmailLogo:
    src: str  # absolute, from delivery.base_url
    alt: str
    width: int
    height: int | None  # kept in proportion, so the layout holds while images are off


@dataclass(frozen=True, slots=True)
class EmailBranding:
    """What the email templates are given (all empty without a [branding] table)."""

    logo: EmailLogo | None
    colour: str | None
    footer_links: tuple[FooterLink, ...]


def email_branding(settings: Settings) -> EmailBranding:
    """The logo as an absolute URL on the web app (its content's hash in the query, so a new
    logo is a new address for caches), the colour and the footer links."""
    brand = settings.branding
    logo = logo_file(settings)
    shown = None
    if logo is not None:
        version = hashlib.sha256(logo.data).hexdigest()[:12]
        size = _pixel_size(logo.data)
        height = round(brand.logo_width * size[1] / size[0]) if size and size[0] else None
        shown = EmailLogo(
            src=f"{settings.delivery.base_url}{logo_path(logo)}?v={version}",
            alt=brand.logo_alt,
            width=brand.logo_width,
            height=height,
        )
    return EmailBranding(shown, brand.colour, tuple(brand.footer_links))


def print_logo(settings: Settings) -> str | None:
    """The logo for the print edition as a ``data:`` URI of pure black and white (a prison
    mailroom photocopies it; greys and colour come out as mud), or None without a logo."""
    logo = logo_file(settings)
    if logo is None:
        return None
    from PIL import Image  # WeasyPrint's own dependency; only the print edition needs it

    with Image.open(io.BytesIO(logo.data)) as image:
        rgba = image.convert("RGBA")
    sheet = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    sheet.alpha_composite(rgba)  # transparent parts are the white paper
    ink = sheet.convert("L").point(lambda v: 255 if v >= 160 else 0).convert("1")
    out = io.BytesIO()
    ink.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _pixel_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return width, height
