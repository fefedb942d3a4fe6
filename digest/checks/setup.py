"""`digest check`: the whole set-up checked, one line per problem (issue 15).

Each check returns its problems as lines (none: it passed); what asks outside raises
``Unanswered`` with the line instead. A check that cannot run (no SendGrid key, say) is
skipped with a note, not a problem. Nothing is changed: the database is not migrated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from digest.audience.tokens import keyring
from digest.checks.dns_records import (
    SenderRecord,
    dkim_records,
    dns_problems,
    sender_domain,
    sender_domain_problems,
)
from digest.config import Secrets, Settings, load_settings
from digest.dispatch.events import BadWebhookKey, load_webhook_key
from digest.errors import ConfigError
from digest.store.content import fetch_states
from digest.store.db import MIGRATIONS, sqlite_url_for

SENDGRID = "https://api.sendgrid.com"
HTTP_TIMEOUT = 5.0  # seconds, for each SendGrid request and a database connection
DOMAINS_PAGE = 200
DOMAINS_PAGES = 10  # 2,000 authenticated domains is plenty for one account


class Unanswered(Exception):
    """A check could not get its answer; the message is the problem line (``status``: the
    HTTP status SendGrid refused with, 401 or 403)."""

    def __init__(self, line: str, status: int | None = None) -> None:
        super().__init__(line)
        self.status = status


@dataclass
class SetupReport:
    """What passed (by name), what failed (each check's lines) and what was skipped (notes)."""

    passed: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [line for lines in self.failed.values() for line in lines]

    def add(self, name: str, problems: list[str]) -> None:
        if problems:
            self.failed[name] = problems
        else:
            self.passed.append(name)

    def add_failure(self, name: str, exc: Exception) -> None:
        """A check that could not get its answer: the exception's line is its problem."""
        self.add(name, [str(exc)])


def run_setup_checks(config: Path | None, secrets: Secrets) -> SetupReport:
    """Every check in order; none stops the others, except a config that does not load."""
    report = SetupReport()
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        report.add_failure("config", exc)
        report.add("secret key", secret_problems(secrets))
        report.notes.append("the other checks need a config that loads")
        return report
    report.add("config", delivery_problems(settings))
    report.add("secret key", secret_problems(secrets))
    _sender_checks(report, settings, secrets)
    if secrets.webhook_public_key:
        report.add("webhook key", webhook_key_problems(secrets.webhook_public_key))
    elif secrets.sendgrid_api_key:
        report.notes.append(
            "webhook key: SENDGRID_WEBHOOK_PUBLIC_KEY is not set, so SendGrid's events "
            "(bounces, spam reports) are refused: copy it from Mail Settings > Event Webhook"
        )
    _store_checks(report, settings)
    return report


# -- config and secrets --------------------------------------------------------------------


def delivery_problems(settings: Settings) -> list[str]:
    """A config that loads may still not be able to send: no [delivery] table."""
    try:
        settings.check_can_send()
    except ConfigError as exc:
        return [str(exc)]
    return []


def secret_problems(secrets: Secrets) -> list[str]:
    """DIGEST_SECRET_KEY is set, and long enough to sign links with."""
    if not secrets.secret_key:
        return [
            "DIGEST_SECRET_KEY is not set: set it in the environment to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))'); it signs the "
            "unsubscribe and preferences links"
        ]
    try:  # the key is given, so no file is read or made in var/
        keyring(secrets.secret_key, secrets.previous_secret_key, Path("var"), may_create=False)
    except ConfigError as exc:
        return [str(exc)]
    return []


def webhook_key_problems(public_key_b64: str) -> list[str]:
    """SENDGRID_WEBHOOK_PUBLIC_KEY loads the way the webhook loads it
    (``dispatch.events.load_webhook_key``). The key itself is never printed."""
    fix = "copy it again from SendGrid's Mail Settings > Event Webhook > Signature Verification"
    try:
        load_webhook_key(public_key_b64)
    except BadWebhookKey as exc:
        return [f"SENDGRID_WEBHOOK_PUBLIC_KEY {exc}: {fix}"]
    return []


# -- SendGrid and DNS ----------------------------------------------------------------------


def _sender_checks(report: SetupReport, settings: Settings, secrets: Secrets) -> None:
    if delivery_problems(settings):
        report.notes.append("the sender checks need a [delivery] table")
        return
    domain = settings.delivery.from_email.rpartition("@")[2].lower()
    if secrets.sendgrid_api_key:
        records, no_dkim = _sendgrid_checks(report, secrets, secrets.sendgrid_api_key, domain)
    else:
        outbox = settings.resolve(settings.delivery.outbox_dir)
        report.notes.append(
            "SendGrid checks skipped: SENDGRID_API_KEY is not set, so mail goes to the "
            f"outbox ({outbox})"
        )
        records, no_dkim = [], "it needs the records SendGrid gives (SENDGRID_API_KEY)"
    for name, problems in dns_problems(secrets.dns_server, domain, records):
        report.add(name, problems)
    if not records:
        report.notes.append(f"DKIM not checked: {no_dkim}")


def _sendgrid_checks(
    report: SetupReport, secrets: Secrets, key: str, domain: str
) -> tuple[list[SenderRecord], str]:
    """The key may send; the domain is authenticated. Returns the domain's DKIM records
    (none when unknown) and why DKIM cannot be checked when there are none."""
    unknown = "SendGrid's records for the domain are not known (see above)"
    with _sendgrid(secrets, key) as client:
        try:
            report.add("SendGrid key", scope_problems(sendgrid_scopes(client)))
        except Unanswered as exc:
            report.add_failure("SendGrid key", exc)
            report.notes.append("sender authentication not checked: the key check failed")
            return [], unknown
        try:
            domains = authenticated_domains(client)
        except Unanswered as exc:
            if exc.status != 403:
                report.add_failure("sender authentication", exc)
                return [], unknown
            report.notes.append(
                f"sender authentication not checked: the SendGrid key may not read it ({exc}): "
                "give it read access to Sender Authentication, or look there yourself"
            )
            return [], unknown
    entry = sender_domain(domains, domain)
    report.add("sender authentication", sender_domain_problems(entry, domain))
    if entry is None:
        return [], f"{domain} is not authenticated in SendGrid"
    return dkim_records(entry), f"SendGrid lists no DKIM records for {entry['domain']}"


def _sendgrid(secrets: Secrets, key: str) -> httpx.Client:
    base = (secrets.sendgrid_host or SENDGRID).rstrip("/")
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    return httpx.Client(base_url=base, headers=headers, timeout=HTTP_TIMEOUT)


def _get(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> Any:
    """The JSON SendGrid answered with 200; else ``Unanswered`` (with the status for 401/403)."""
    try:
        response = client.get(path, params=params)
    except httpx.TimeoutException:
        raise Unanswered(
            f"SendGrid did not answer GET {path} within {HTTP_TIMEOUT:g} s: try again later"
        ) from None
    except httpx.HTTPError as exc:
        raise Unanswered(
            f"cannot reach SendGrid at {client.base_url} ({type(exc).__name__}: {exc}): "
            "check the network, or DIGEST_SENDGRID_HOST"
        ) from None
    status = response.status_code
    if status in (401, 403):
        raise Unanswered(f"{status}: {_error_text(response)}", status)
    if status != 200:
        raise Unanswered(f"SendGrid answered {status} to GET {path} ({_error_text(response)})")
    try:
        return response.json()
    except ValueError:
        raise Unanswered(f"SendGrid's answer to GET {path} is not JSON: try again later") from None


def _error_text(response: httpx.Response) -> str:
    """SendGrid's own error messages, else the reason phrase."""
    try:
        errors = response.json().get("errors")
        text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError, TypeError):
        text = ""
    return (text or response.reason_phrase or "no reason given")[:200]


def sendgrid_scopes(client: httpx.Client) -> list[str]:
    """``GET /v3/scopes``: what the key may do."""
    try:
        body = _get(client, "/v3/scopes")
    except Unanswered as exc:
        if exc.status is None:
            raise
        raise Unanswered(
            f"the SendGrid key is refused ({exc}): check SENDGRID_API_KEY, or make a new key "
            "under Settings > API Keys"
        ) from None
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if not isinstance(scopes, list):
        raise Unanswered("SendGrid's answer to GET /v3/scopes has no list of scopes")
    return [str(s) for s in scopes]


def scope_problems(scopes: list[str]) -> list[str]:
    if "mail.send" not in scopes:
        return ["the SendGrid key may not send mail (no mail.send scope): give it Mail Send access"]
    return []


def authenticated_domains(client: httpx.Client) -> list[dict[str, Any]]:
    """``GET /v3/whitelabel/domains``, every page."""
    found: list[dict[str, Any]] = []
    for page in range(DOMAINS_PAGES):
        params = {"limit": DOMAINS_PAGE, "offset": page * DOMAINS_PAGE}
        body = _get(client, "/v3/whitelabel/domains", params)
        if not isinstance(body, list):
            raise Unanswered("SendGrid's answer to GET /v3/whitelabel/domains is not a list")
        found += [d for d in body if isinstance(d, dict) and isinstance(d.get("domain"), str)]
        if len(body) < DOMAINS_PAGE:
            break
    return found


# -- the database and the sources ----------------------------------------------------------


def _store_checks(report: SetupReport, settings: Settings) -> None:
    """The database (as it is), then the sources' last collect, which it holds."""
    try:
        engine = open_unmigrated(settings)
    except Unanswered as exc:
        report.add_failure("database", exc)
        report.notes.append(NO_SOURCES)
        return
    try:
        current = database_revisions(engine)
        report.add("database", revision_problems(current, engine))
        if current:
            report.add("sources", source_problems(engine, settings))
        else:
            report.notes.append(NO_SOURCES)
    except Unanswered as exc:
        report.add_failure("database", exc)
        report.notes.append(NO_SOURCES)
    finally:
        engine.dispose()


NO_SOURCES = "sources not checked: the database cannot be read"


def open_unmigrated(settings: Settings) -> Engine:
    """An engine on the configured database, as it is (``open_engine`` would upgrade it)."""
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        raise Unanswered("the database URL is not valid: check DIGEST_DATABASE_URL") from None
    args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database or "")
        path = path if path.is_absolute() else settings.base_dir / path
        if not path.is_file():
            raise Unanswered(
                f"there is no database at {path} yet: run `digest collect` (it makes one and "
                "collects the sources)"
            )
    elif url.get_backend_name() == "postgresql":
        args["connect_timeout"] = int(HTTP_TIMEOUT)
    try:
        return sa.create_engine(
            sqlite_url_for(settings.database_url, settings.base_dir), connect_args=args
        )
    except (ArgumentError, ImportError, ConfigError) as exc:
        raise Unanswered(
            f"cannot use the database URL ({exc}): check DIGEST_DATABASE_URL"
        ) from None


def database_revisions(engine: Engine) -> set[str]:
    """The migrations the database is at (none: it has no tables yet)."""
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        why = getattr(exc, "orig", None) or exc
        raise Unanswered(
            f"cannot reach the database {where} ({str(why).strip()}): check DIGEST_DATABASE_URL "
            "and that the server is up"
        ) from None


def revision_problems(current: set[str], engine: Engine) -> list[str]:
    """At the newest migration, or a line saying what to run."""
    where = engine.url.render_as_string(hide_password=True)
    script = ScriptDirectory(str(MIGRATIONS))
    heads = set(script.get_heads())
    if current == heads:
        return []
    fix = "run any digest command (e.g. `digest editions`): it upgrades the database first"
    if not current:
        return [f"the database {where} has no tables yet: {fix}"]
    known = {s.revision for s in script.walk_revisions()}
    if current - known:
        return [
            f"the database {where} is at migration {', '.join(sorted(current))}, which this "
            "version of digest does not know: install the digest that made it"
        ]
    return [
        f"the database {where} is at migration {', '.join(sorted(current))}, not the newest "
        f"({', '.join(sorted(heads))}): {fix}"
    ]


def source_problems(engine: Engine, settings: Settings) -> list[str]:
    """Every feed and calendar was fetched at the last collect, from its configured URL."""
    configured = [("feed", f.name, f.url) for f in settings.sources.feeds]
    configured += [("calendar", c.name, c.url) for c in settings.sources.calendars]
    try:
        with engine.connect() as conn:
            rows = fetch_states(conn)
    except SQLAlchemyError as exc:
        return [f"cannot read when the sources were last collected ({exc})"]
    zone = settings.organisation.zone
    problems = []
    for kind, name, url in configured:
        row = rows.get(f"{kind}:{name}")
        if row is None or row.last_checked is None:
            problems.append(f"{kind} {name!r} was never collected: run `digest collect`")
        elif row.url != url:
            problems.append(
                f"{kind} {name!r} has not been collected since its URL changed: "
                "run `digest collect`"
            )
        elif row.last_error:
            when = row.last_checked.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
            problems.append(
                f"{kind} {name!r} failed at its last collect ({when}): {row.last_error}"
            )
    return problems
