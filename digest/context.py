"""The application context: what every service needs, built once per process and passed down.

Settings, the database engine, the secrets, the clock, the URL builder, the signing keys
(made the first time they are needed) and the transport factory. The command line, the
scheduler and the web app each build one; services take it instead of a
settings/engine/secrets triple.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from digest import clock as wall_clock
from digest.config import Secrets, Settings, load_settings
from digest.store import open_engine
from digest.urls import Urls

if TYPE_CHECKING:  # imported where used: the renderers come in behind dispatch's modules
    from digest.audience.tokens import Keyring
    from digest.dispatch.batch import Transport


@dataclass
class App:
    settings: Settings
    engine: Engine
    secrets: Secrets = field(default_factory=Secrets)
    clock: Callable[[], datetime] = wall_clock.now

    @cached_property
    def urls(self) -> Urls:
        return Urls(self.settings.delivery.base_url)

    @cached_property
    def keys(self) -> Keyring:
        """The keys that sign every personal link (DIGEST_SECRET_KEY, or the demo's file)."""
        from digest.audience.tokens import keyring

        s = self.secrets
        return keyring(s.secret_key, s.previous_secret_key, self.settings.var_dir, may_create=False)

    def transport(self, now: datetime | None = None) -> Transport:
        """SendGrid when SENDGRID_API_KEY is set; the outbox of .eml files otherwise. Every
        send asks here, so a configuration that cannot send is refused here."""
        self.settings.check_can_send()
        from digest.dispatch.outbox import OutboxTransport
        from digest.dispatch.sendgrid import SendGridTransport

        if self.secrets.sendgrid_api_key:
            return SendGridTransport(
                self.settings, self.secrets.sendgrid_api_key, self.secrets.sendgrid_host
            )
        return OutboxTransport(self.settings, now or self.clock())


def open_app(config: Path | None = None, secrets: Secrets | None = None) -> App:
    """Settings from ``config`` (see config_path), its database, secrets from the environment."""
    settings = load_settings(config)
    engine = open_engine(
        settings.database_url,
        settings.base_dir,
        backup_dir=settings.resolve(settings.backup.dir),
    )
    return App(settings, engine, secrets or Secrets.from_env())
