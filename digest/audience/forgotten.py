"""Which forgotten marks to look for: the signing key's, or none where no key is set and
nobody was forgotten (an import on a fresh machine needs no key)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from digest.errors import ConfigError
from digest.store import audience as store

if TYPE_CHECKING:
    from digest.context import App


def marks_of(app: App, conn: Connection) -> store.Marks:
    """``Keyring.forgotten``; without a signing key, no marks, refused once anyone has been
    forgotten: only the key recognises them, and they must not come back unasked."""
    try:
        return app.keys.forgotten
    except ConfigError:
        if store.any_forgotten(conn):
            raise ConfigError(
                "DIGEST_SECRET_KEY is not set, and some people asked to be forgotten: set it "
                "(the same key as when they were) so they are kept out"
            ) from None
        return store.no_marks
