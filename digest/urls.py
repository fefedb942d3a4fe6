"""Every link the project makes, from ``delivery.base_url``: one builder, no f-string paths."""

from __future__ import annotations

from dataclasses import dataclass

CONSOLE = "/admin"


@dataclass(frozen=True, slots=True)
class Urls:
    base: str  # delivery.base_url, no trailing slash

    def archive(self, edition_id: str | None = None) -> str:
        """The public archive, or one edition's page in it."""
        return f"{self.base}/archive" + (f"/{edition_id}" if edition_id else "")

    def archive_feed(self) -> str:
        return f"{self.base}/archive/feed.atom"

    def unsubscribe(self, token: str) -> str:
        return f"{self.base}/u/{token}"

    def preferences(self, token: str) -> str:
        return f"{self.base}/p/{token}"

    def confirm(self, token: str) -> str:
        return f"{self.base}/c/{token}"

    def absolute(self, path: str) -> str:
        """A path on this server in full (a console page, for emails to staff)."""
        return f"{self.base}{path}"


def console_path(path: str = "") -> str:
    """A console page's path on this server (for redirects and forms)."""
    return CONSOLE + (f"/{path.lstrip('/')}" if path else "")


def edition_path(edition_id: str) -> str:
    """The console page of one edition, as a path."""
    return console_path(f"editions/{edition_id}")
