"""The [branding] table: how the emails look (a logo the web app serves, a colour checked
for contrast against white, links in the footer), and reading the logo's file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from digest.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def contrast_with_white(colour: str) -> float:
    """The WCAG 2 contrast ratio of a ``#rrggbb`` colour against white (1 to 21)."""
    return contrast_ratio(colour, "#ffffff")


def contrast_ratio(one: str, other: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    lighter, darker = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


MIN_CONTRAST = 4.5  # WCAG AA for body-size text: links and headings are text


class FooterLink(_Strict):
    label: str = Field(min_length=1)
    url: str

    @field_validator("label")
    @classmethod
    def _one_line(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("is empty: write what the link is, like 'Donate'")
        return value

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "is not an absolute http(s) URL: write it in full, like https://example.org/give"
            )
        return value.strip()


class Branding(_Strict):
    """How the emails look: a logo served by the web app, a colour, links in the footer."""

    logo: str | None = None  # a PNG, JPEG or GIF file, relative to config.toml
    logo_alt: str = ""
    logo_width: int = Field(default=160, ge=16, le=600)  # CSS pixels in the email
    colour: str | None = None  # "#1d5c4b": headings, links and the header bar
    footer_links: list[FooterLink] = Field(default_factory=list)

    @field_validator("colour")
    @classmethod
    def _readable_on_white(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if len(value) == 4 and value.startswith("#"):  # "#abc" is "#aabbcc"
            value = "#" + "".join(c * 2 for c in value[1:])
        if len(value) != 7 or not value.startswith("#") or not _is_hex(value[1:]):
            raise ValueError('is not a hex colour: write it like "#1d5c4b"')
        ratio = contrast_with_white(value)
        if ratio < MIN_CONTRAST:
            raise ValueError(
                f"has a contrast of {ratio:.2f}:1 with white, under the {MIN_CONTRAST}:1 "
                "that text needs to be readable (WCAG AA): pick a darker colour"
            )
        return value

    @model_validator(mode="after")
    def _alt_with_logo(self) -> Branding:
        self.logo_alt = " ".join(self.logo_alt.split())
        if self.logo and not self.logo_alt:
            raise ValueError(
                "branding.logo_alt is required when branding.logo is set: write what the "
                "logo says (usually the organisation's name), for readers who see no images"
            )
        return self


# What email clients show: Gmail and Outlook show no SVG, Outlook no WebP.
_LOGO_TYPES = {
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"GIF87a": ("image/gif", "gif"),
    b"GIF89a": ("image/gif", "gif"),
}
MAX_LOGO_BYTES = 1_000_000  # every reader downloads it with every email


@dataclass(frozen=True, slots=True)
class LogoFile:
    """The logo as read from disk: what the web app serves and the print edition embeds."""

    data: bytes = field(repr=False)
    content_type: str
    suffix: str  # "png", "jpg" or "gif": the served path ends with it


def read_logo(path: Path) -> LogoFile:
    """``branding.logo``'s file, or one ConfigError line saying what to do about it."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_LOGO_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"branding.logo: no such file {str(path)!r}: the path is relative to config.toml"
        ) from None
    except OSError as exc:
        raise ConfigError(f"branding.logo: cannot read {str(path)!r} ({exc.strerror})") from None
    if len(data) > MAX_LOGO_BYTES:
        raise ConfigError(
            f"branding.logo: {str(path)!r} is over {MAX_LOGO_BYTES // 1_000_000} MB, and every "
            "reader downloads it: save it smaller (twice its width in the email is enough)"
        )
    for magic, (content_type, suffix) in _LOGO_TYPES.items():
        if data.startswith(magic):
            return LogoFile(data, content_type, suffix)
    raise ConfigError(
        f"branding.logo: {str(path)!r} is not a PNG, JPEG or GIF image (Gmail and Outlook "
        "show no SVG): export the logo as PNG"
    )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def check_logo(branding: Branding, resolve: Callable[[str], Path], source: Path) -> None:
    """Refuse, when the settings are read, a logo file that is missing or no image."""
    if branding.logo:
        try:
            read_logo(resolve(branding.logo))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
