"""One settings loader: defaults < config.toml < DIGEST_* environment < command-line flags.

Read once at the edge (CLI, scheduler, web) and passed down; no other module
reads the environment.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from datetime import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from digest.audience.addresses import email_key, known_timezone
from digest.config_branding import Branding, check_logo
from digest.config_checks import CheckSettings
from digest.config_errors import (
    approval_problems,
    describe_validation_error,
    list_problems,
    section_problems,
)
from digest.config_ops import BackupSettings
from digest.config_secrets import Secrets as Secrets
from digest.config_welcome import check_welcomes
from digest.errors import ConfigError

DEFAULT_CONFIG = Path("config.toml")
DEFAULT_SECTION_CAP = 8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Organisation(_Strict):
    name: str = "Our coalition"
    postal_address: str = ""
    website: str = "https://example.org"
    reply_to: str = ""
    timezone: str = "UTC"
    language: str = "en"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not known_timezone(value):
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as 'America/New_York')"
            )
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class FeedSource(_Strict):
    name: str
    url: str
    section: str = "news"
    # An intranet feed on a private address on purpose: its own host and port only.
    allow_private: bool = False


class CalendarSource(_Strict):
    name: str
    url: str
    allow_private: bool = False


class NotesSource(_Strict):
    dir: str = "notes"


class Sources(_Strict):
    feeds: list[FeedSource] = Field(default_factory=list)
    calendars: list[CalendarSource] = Field(default_factory=list)
    notes: NotesSource | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Sources:
        seen: set[str] = set()
        for name in [f.name for f in self.feeds] + [c.name for c in self.calendars]:
            if name in seen or name == "notes":
                raise ValueError(
                    f"source name {name!r} is used twice (or is the reserved "
                    "name 'notes'): give each feed and calendar its own name"
                )
            seen.add(name)
        return self


class CollectSettings(_Strict):
    timeout_seconds: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=5_000_000, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    summary_chars: int = Field(default=300, ge=40)
    # A recurring event expands lazily, up to these many occurrences in the window.
    max_occurrences_per_event: int = Field(default=500, ge=1)
    max_occurrences_per_calendar: int = Field(default=5000, ge=1)


class EditionSettings(_Strict):
    window_days: int = Field(default=7, ge=1)
    events_ahead_days: int = Field(default=14, ge=0)
    sections: list[str] = Field(default_factory=lambda: ["news", "stories", "events"])
    section_titles: dict[str, str] = Field(default_factory=dict)
    max_items_per_section: int | dict[str, int] = DEFAULT_SECTION_CAP
    more_url: str = ""
    subject: str = "{org}: the week of {date}"
    require_approval: bool = False
    auto_send_after: str | None = Field(default=None, pattern=r"^\d+[mhd]$")
    preview_list: str = "staff"
    # Readers may choose their sections: the edition is rendered once per distinct choice
    # in use, at most this many; readers of any other choice get the whole edition.
    max_section_variants: int = Field(default=8, ge=0)

    def cap_for(self, section: str) -> int:
        caps = self.max_items_per_section
        if isinstance(caps, int):
            return caps
        return caps.get(section, DEFAULT_SECTION_CAP)

    def title_for(self, section: str) -> str:
        return self.section_titles.get(section, section.replace("_", " ").capitalize())


class ListSettings(_Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    kind: Literal["digest", "alerts", "print"] = "digest"
    description: str = ""
    double_opt_in: bool = True
    welcome: str = ""  # a Markdown file (relative to config.toml): the welcome email; "" none


class DeliverySettings(_Strict):
    # No defaults once [delivery] is written: a real send never goes from a made-up address.
    from_email: str
    from_name: str = ""
    base_url: str
    unsubscribe_mailto: str = ""
    outbox_dir: str = "var/outbox"
    batch_size: int = Field(default=1000, ge=1, le=1000)
    concurrency: int = Field(default=4, ge=1)
    # Worker processes for a big send: 0, one per core (at most 4) from 200 batches; a
    # number from 50 batches.
    processes: int = Field(default=0, ge=0, le=16)
    tracking: bool = False
    asm_group_id: int | None = None
    sandbox: bool = False
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=1.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        local = parts.hostname in LOCAL_HOSTS
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "is not an absolute http(s) URL: write the web app's public address, "
                "like https://news.example.org"
            )
        if parts.scheme != "https" and not local:
            raise ValueError(
                "must be https (links in every email point here); http is only for "
                "localhost or 127.0.0.1"
            )
        return value.strip().rstrip("/")

    @field_validator("from_email")
    @classmethod
    def _an_address(cls, value: str) -> str:
        try:
            given, _ = email_key(value)  # the project's one address rule
        except EmailNotValidError as exc:
            raise ValueError(f"is not an email address ({exc})") from None
        return given


# Used only when config.toml has no [delivery] table: fine for building and previews, never
# for a send (``Settings.check_can_send``).
UNSET_DELIVERY = {"from_email": "digest@example.org", "base_url": "http://localhost:8000"}
LOCAL_HOSTS = ("localhost", "127.0.0.1")


class PrintProfile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    paper: Literal["letter", "a4"] = "letter"
    page_cap: int = Field(default=6, ge=1)
    emessage_chars: int = Field(default=13_000, ge=200)
    emessage_lines: int | None = None
    ascii_only: bool = False
    note: str = ""
    # Markdown printed on the first page for readers inside: how to write to us, how to
    # get on or off the list, what the coalition can and can't help with.
    inside_note: str = ""


class PrintSettings(_Strict):
    default_profile: str = "default"
    profiles: list[PrintProfile] = Field(default_factory=lambda: [PrintProfile(name="default")])

    @model_validator(mode="after")
    def _default_exists(self) -> PrintSettings:
        names = [p.name for p in self.profiles]
        if len(set(names)) != len(names):
            raise ValueError("two [[print.profiles]] share a name: give each its own")
        if self.default_profile not in names:
            raise ValueError(
                f"print.default_profile {self.default_profile!r} is not one of "
                f"[[print.profiles]] ({', '.join(names) or 'none'})"
            )
        return self

    def profile_named(self, name: str | None) -> PrintProfile:
        """The named profile, or the default one for a member who names none (or a gone one)."""
        by_name = {p.name: p for p in self.profiles}
        return by_name.get(name or "", by_name[self.default_profile])


class WebSettings(_Strict):
    # Proxies whose X-Forwarded-For is believed (addresses or networks); none by default,
    # so the socket's peer is the client.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)


class ScheduleSettings(_Strict):
    collect: str = "0 6 * * *"
    send: str = "0 7 * * thu"
    backup: str = "30 3 * * *"  # the daily backup ([backup] says where and how many)
    grace_minutes: int = Field(default=120, ge=1)
    # "07:00": the weekly edition reaches each reader at that time in their own timezone
    # on the send day; the job starts early enough for the first zone. None: at once.
    deliver_at_local: time | None = None


_TOML_DATA: ContextVar[dict[str, Any] | None] = ContextVar("_TOML_DATA", default=None)


class _TomlDataSource(PydanticBaseSettingsSource):
    """config.toml, already parsed, as the lowest-priority source above the defaults."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_TOML_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_TOML_DATA.get() or {})


class Settings(BaseSettings):
    """Everything digest needs to know about the organisation and its job."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    database_url: str = "sqlite:///var/digest.db"
    organisation: Organisation = Field(default_factory=Organisation)
    sources: Sources = Field(default_factory=Sources)
    collect: CollectSettings = Field(default_factory=CollectSettings)
    edition: EditionSettings = Field(default_factory=EditionSettings)
    lists: list[ListSettings] = Field(default_factory=list)
    delivery: DeliverySettings = Field(default_factory=lambda: DeliverySettings(**UNSET_DELIVERY))
    print: PrintSettings = Field(default_factory=PrintSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    branding: Branding = Field(default_factory=Branding)
    checks: CheckSettings = Field(default_factory=CheckSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _delivery_given: bool = PrivateAttr(default=True)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """What each table allows alone, checked against the others (one line each)."""
        problems = [
            *list_problems(self.lists),
            *section_problems(self.edition, self.sources),
            *approval_problems(self.edition, self.lists),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlDataSource(settings_cls)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the settings are resolved against (config.toml's)."""
        return self._base_dir

    def check_can_send(self) -> None:
        """A send needs a [delivery] table of its own: no made-up sender or links."""
        if not self._delivery_given:
            raise ConfigError(
                "config.toml has no [delivery] table: add one with from_email and base_url "
                "(see the commented sample config.toml) before sending"
            )

    def resolve(self, path: str | Path) -> Path:
        """A path from the settings, relative to config.toml's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    @property
    def var_dir(self) -> Path:
        return self.resolve("var")

    def list_named(self, slug: str) -> ListSettings:
        for item in self.lists:
            if item.slug == slug:
                return item
        known = ", ".join(x.slug for x in self.lists) or "none"
        raise ConfigError(f"no list {slug!r} in [[lists]] (known: {known}): add it to config.toml")


def config_path(explicit: Path | None) -> Path:
    """--config, else DIGEST_CONFIG, else ./config.toml."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("DIGEST_CONFIG")
    return Path(from_env) if from_env else DEFAULT_CONFIG


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load the settings from ``path`` (see :func:`config_path`), the environment and flags."""
    source = config_path(path)
    data = read_toml(source)
    token = _TOML_DATA.set(data)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, data)) from None
    finally:
        _TOML_DATA.reset(token)
    settings._base_dir = source.resolve().parent
    check_logo(settings.branding, settings.resolve, source)
    check_welcomes(settings.lists, settings.resolve, source)
    settings._delivery_given = (
        "delivery" in data
        or "delivery" in overrides
        or any(name.upper().startswith("DIGEST_DELIVERY__") for name in os.environ)
    )
    return settings


def read_toml(path: Path) -> dict[str, Any]:
    """Parse config.toml, turning every failure into one ConfigError line."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file: pass --config PATH or set DIGEST_CONFIG "
            "(the repository's config.toml is a commented sample)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file: pass --config PATH") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}: fix the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
