"""`digest check` end to end: the real command against the fake SendGrid and a local DNS
server, one line per problem, exit 1 when there is any (issue 15, item 5)."""

from __future__ import annotations

import base64
import shutil
import socket
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import sqlalchemy as sa
import time_machine
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner, Result

from digest.audience.tokens import KEY_FILE, MIN_KEY_LENGTH
from digest.checks import dns_records
from digest.cli import app
from digest.store.db import MIGRATIONS
from tests.conftest import (
    API_KEY,
    BASE_CONFIG,
    EXAMPLE_SOURCES,
    NOW,
    QUIET_CHECKS,
    ROOMY_PRINT,
    Project,
)
from tests.dns_server import LocalDns, Records
from tests.fake_sendgrid import (
    DOMAINS_PATH,
    SCOPES_PATH,
    SENDER_DOMAIN,
    FakeSendGrid,
    authenticated_domain,
    response_schema,
)

SECRET = "setup-check-secret-key-0123456789abcdef"
DOMAIN = SENDER_DOMAIN  # news@coalition.example.org sends (tests.conftest.BASE_CONFIG)
GOOD_RECORDS: Records = {
    (DOMAIN, "TXT"): ["v=spf1 include:sendgrid.net ~all", "google-site-verification=abc"],
    (f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:dmarc@" + DOMAIN],
    (f"s1._domainkey.{DOMAIN}", "CNAME"): ["s1.domainkey.u7.wl.sendgrid.net"],
    (f"s2._domainkey.{DOMAIN}", "CNAME"): ["s2.domainkey.u7.wl.sendgrid.net"],
}
EVERY_CHECK = (
    "config, secret key, SendGrid key, sender authentication, SPF, DKIM, DMARC, webhook key, "
    "database, sources"
)


def webhook_key(key: Any = None) -> str:
    """Base64 DER of a public key, the way SendGrid shows its verification key."""
    public = (key or ec.generate_private_key(ec.SECP256R1())).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@dataclass
class SetUp:
    project: Project
    fake: FakeSendGrid
    dns: LocalDns
    monkeypatch: pytest.MonkeyPatch

    def run(self, *args: str) -> Result:
        cfg = ["--config", str(self.project.config)]
        return CliRunner().invoke(app, [*args, *cfg])

    def check(self) -> Result:
        result = self.run("check")
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result


def problems(result: Result) -> list[str]:
    return [
        line.removeprefix("problem: ")
        for line in result.output.splitlines()
        if line.startswith("problem: ")
    ]


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The var/ folder of a project whose examples were collected (once for the module)."""
    folder = tmp_path_factory.mktemp("collected")
    config = folder / "config.toml"
    config.write_text(
        textwrap.dedent(BASE_CONFIG) + textwrap.dedent(EXAMPLE_SOURCES) + ROOMY_PRINT + QUIET_CHECKS
    )
    unset: dict[str, str | None] = {"DIGEST_DATABASE_URL": None, "DIGEST_CONFIG": None}
    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(app, ["collect", "--config", str(config)], env=unset)
    assert result.exit_code == 0, result.output
    return folder / "var"


@pytest.fixture
def setup(
    make_project: Callable[[str], Project], monkeypatch: pytest.MonkeyPatch, collected: Path
) -> Iterator[SetUp]:
    """A set-up that passes every check: key and domain good in the fake SendGrid, SPF,
    DKIM and DMARC published in the local DNS, the webhook key set, the examples collected."""
    project = make_project(EXAMPLE_SOURCES)
    shutil.copytree(collected, project.folder / "var")
    with FakeSendGrid(api_key=API_KEY) as fake, LocalDns(GOOD_RECORDS) as dns:
        for name, value in {
            "SENDGRID_API_KEY": API_KEY,
            "DIGEST_SENDGRID_HOST": fake.url,
            "DIGEST_DNS_SERVER": dns.address,
            "DIGEST_SECRET_KEY": SECRET,
            "SENDGRID_WEBHOOK_PUBLIC_KEY": webhook_key(),
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DIGEST_SECRET_KEY_PREVIOUS", raising=False)
        s = SetUp(project, fake, dns, monkeypatch)
        yield s
        assert fake.crashes() == []


def test_a_good_set_up_passes_every_check(setup: SetUp) -> None:
    result = setup.check()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"all 10 checks passed: {EVERY_CHECK}"]
    # Each was really asked: the key's scopes, the domains, and every record in DNS.
    assert [p.split("?")[0] for p in setup.fake.account_requests] == [SCOPES_PATH, DOMAINS_PATH]
    asked = set(setup.dns.queries)
    assert {(DOMAIN, "TXT"), (f"_dmarc.{DOMAIN}", "TXT")} <= asked
    assert {(f"s1._domainkey.{DOMAIN}", "CNAME"), (f"s2._domainkey.{DOMAIN}", "CNAME")} <= asked


def test_a_missing_dmarc_record_is_named_with_what_to_add(setup: SetUp) -> None:
    del setup.dns.records[(f"_dmarc.{DOMAIN}", "TXT")]
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        f"no DMARC record at _dmarc.{DOMAIN} (_dmarc.{DOMAIN} does not exist in DNS): add a TXT "
        f'record _dmarc.{DOMAIN} such as "v=DMARC1; p=none; rua=mailto:dmarc@{DOMAIN}" '
        "(Gmail and Yahoo want one from bulk senders)"
    ]
    assert "1 problem found; passed: config, secret key, SendGrid key" in result.output


def test_a_dmarc_policy_on_the_parent_domain_covers_the_sender(setup: SetUp) -> None:
    records = setup.dns.records
    records[("_dmarc.example.org", "TXT")] = records.pop((f"_dmarc.{DOMAIN}", "TXT"))
    assert setup.check().exit_code == 0


def test_a_missing_spf_record_and_a_wrong_dkim_record(setup: SetUp) -> None:
    setup.dns.records[(DOMAIN, "TXT")] = ["google-site-verification=abc"]
    setup.dns.records[(f"s2._domainkey.{DOMAIN}", "CNAME")] = ["s2.elsewhere.example.net"]
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        f"no SPF record for {DOMAIN} (no TXT record of {DOMAIN} is one): add a TXT record on "
        f'{DOMAIN} such as "v=spf1 include:sendgrid.net ~all"',
        f"the DKIM record s2._domainkey.{DOMAIN} points to s2.elsewhere.example.net, not "
        "s2.domainkey.u7.wl.sendgrid.net: change the CNAME to s2.domainkey.u7.wl.sendgrid.net",
    ]


def test_an_unauthenticated_sender_domain(setup: SetUp) -> None:
    setup.fake.domains = [authenticated_domain("other.example.net")]
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        f"the sender domain {DOMAIN} is not authenticated in SendGrid: "
        "Settings > Sender Authentication"
    ]
    assert f"note: DKIM not checked: {DOMAIN} is not authenticated in SendGrid" in result.output


def test_a_parent_domain_authenticated_covers_the_sender(setup: SetUp) -> None:
    setup.fake.domains = [authenticated_domain("example.org")]
    for n in (1, 2):
        setup.dns.records[(f"s{n}._domainkey.example.org", "CNAME")] = [
            f"s{n}.domainkey.u7.wl.sendgrid.net"
        ]
    result = setup.check()
    assert result.exit_code == 0, result.output
    assert ("s1._domainkey.example.org", "CNAME") in setup.dns.queries


def test_an_authenticated_domain_not_verified_says_so(setup: SetUp) -> None:
    setup.fake.domains = [authenticated_domain(valid=False)]
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        f"the sender domain {DOMAIN} is authenticated in SendGrid (as {DOMAIN}) but not "
        "verified: publish the DNS records SendGrid lists under Settings > Sender "
        "Authentication, then press Verify"
    ]


def test_a_key_that_may_not_send(setup: SetUp) -> None:
    setup.fake.scopes = ["whitelabel.read", "stats.read"]
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        "the SendGrid key may not send mail (no mail.send scope): give it Mail Send access"
    ]


def test_a_refused_key_is_said_without_printing_it(setup: SetUp) -> None:
    wrong = "SG.wrong-key-that-must-not-be-printed"
    setup.monkeypatch.setenv("SENDGRID_API_KEY", wrong)
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        "the SendGrid key is refused (401: The provided authorization grant is invalid, "
        "expired, or revoked): check SENDGRID_API_KEY, or make a new key under Settings > "
        "API Keys"
    ]
    assert "sender authentication not checked: the key check failed" in result.output
    assert wrong not in result.output


def test_a_key_that_may_not_read_sender_authentication_is_a_note(setup: SetUp) -> None:
    setup.fake.scopes = ["mail.send"]  # least privilege: not a problem, but not checked
    result = setup.check()
    assert result.exit_code == 0, result.output
    assert "note: sender authentication not checked: the SendGrid key may not read it" in (
        result.output
    )
    assert "note: DKIM not checked" in result.output


def test_no_sendgrid_key_skips_the_sendgrid_checks_without_failing(setup: SetUp) -> None:
    setup.monkeypatch.delenv("SENDGRID_API_KEY")
    result = setup.check()
    assert result.exit_code == 0, result.output
    outbox = setup.project.folder / "var" / "outbox"
    assert result.output.splitlines() == [
        "note: SendGrid checks skipped: SENDGRID_API_KEY is not set, so mail goes to the "
        f"outbox ({outbox})",
        "note: DKIM not checked: it needs the records SendGrid gives (SENDGRID_API_KEY)",
        "all 7 checks passed: config, secret key, SPF, DMARC, webhook key, database, sources",
    ]
    assert setup.fake.account_requests == []


def test_no_secret_key_even_with_the_demos_key_file(setup: SetUp) -> None:
    setup.monkeypatch.delenv("DIGEST_SECRET_KEY")
    # The demo's own key would sign links, but real mail needs the environment's.
    (setup.project.folder / "var" / KEY_FILE).write_text("a-demo-key-" * 4, encoding="ascii")
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        "DIGEST_SECRET_KEY is not set: set it in the environment to a long random string "
        "(python -c 'import secrets; print(secrets.token_urlsafe(48))'); it signs the "
        "unsubscribe and preferences links"
    ]


def test_a_secret_key_too_short(setup: SetUp) -> None:
    setup.monkeypatch.setenv("DIGEST_SECRET_KEY", "short")
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        f"DIGEST_SECRET_KEY is shorter than {MIN_KEY_LENGTH} characters: use a long random string"
    ]
    assert "short" not in result.output.replace("shorter", "")


@pytest.mark.parametrize(
    ("key", "line"),
    [
        ("not a key at all", "is not a base64 DER public key"),
        (webhook_key(rsa.generate_private_key(65537, 1024)), "is not an ECDSA key"),
    ],
    ids=["garbage", "rsa"],
)
def test_a_bad_webhook_key_is_said_without_printing_it(setup: SetUp, key: str, line: str) -> None:
    setup.monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", key)
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        f"SENDGRID_WEBHOOK_PUBLIC_KEY {line}"
        + (", as SendGrid's are" if "ECDSA" in line else "")
        + ": copy it again from SendGrid's Mail Settings > Event Webhook > Signature Verification"
    ]
    assert key not in result.output


def test_a_source_that_failed_at_its_last_collect(setup: SetUp, tmp_path: Path) -> None:
    missing = tmp_path / "gone.xml"
    with setup.project.config.open("a") as fh:
        fh.write(f'\n[[sources.feeds]]\nname = "gone"\nurl = "{missing}"\nsection = "news"\n')
    with time_machine.travel(NOW, tick=False):
        setup.run("collect")
    result = setup.check()
    assert result.exit_code == 1
    [line] = problems(result)
    assert line.startswith("feed 'gone' failed at its last collect (2026-11-26 07:00 EST): ")
    assert line.endswith("gone.xml does not exist: check sources.feeds[3].url in config.toml")


def test_a_source_never_collected(setup: SetUp) -> None:
    with setup.project.config.open("a") as fh:
        fh.write('\n[[sources.calendars]]\nname = "new"\nurl = "https://example.org/x.ics"\n')
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == ["calendar 'new' was never collected: run `digest collect`"]


def test_an_old_database_is_reported_and_left_as_it_is(setup: SetUp) -> None:
    engine = setup.project.engine()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0013'"))
    result = setup.check()
    assert result.exit_code == 1
    [line] = problems(result)
    (head,) = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert head != "0013"
    assert line.endswith(
        f"is at migration 0013, not the newest ({head}): run any digest command "
        "(e.g. `digest editions`): it upgrades the database first"
    )
    with engine.connect() as conn:  # checking changed nothing
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0013"
    engine.dispose()


def test_an_unreachable_database(setup: SetUp) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    setup.monkeypatch.setenv("DIGEST_DATABASE_URL", f"postgresql+psycopg://u:pw@127.0.0.1:{port}/x")
    result = setup.check()
    assert result.exit_code == 1
    [line] = problems(result)
    assert line.startswith(
        f"cannot reach the database postgresql+psycopg://u:***@127.0.0.1:{port}/x"
    )
    assert "note: sources not checked: the database cannot be read" in result.output


def test_a_broken_config_is_a_problem_line_not_a_traceback(setup: SetUp) -> None:
    setup.project.config.write_text("[organisation\nname = 1\n")
    result = setup.check()
    assert result.exit_code == 1
    [line] = problems(result)
    assert "not valid TOML" in line and "Traceback" not in result.output
    assert "note: the other checks need a config that loads" in result.output


def test_a_dns_server_that_does_not_answer_costs_one_timeout(
    setup: SetUp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dns_records, "TIMEOUT", 0.2)
    monkeypatch.setattr(dns_records, "LIFETIME", 0.3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # reads nothing, says nothing
        silent.bind(("127.0.0.1", 0))
        where = f"127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("DIGEST_DNS_SERVER", where)
        result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        f"the DNS server {where} did not answer within 0.3 s when asked for the TXT record "
        f"of {DOMAIN}: check DIGEST_DNS_SERVER or the network (the other DNS checks were not run)"
    ]


def test_a_dns_server_setting_that_is_not_host_and_port(setup: SetUp) -> None:
    setup.monkeypatch.setenv("DIGEST_DNS_SERVER", "127.0.0.1:dns")
    result = setup.check()
    assert result.exit_code == 1
    assert problems(result) == [
        "DIGEST_DNS_SERVER '127.0.0.1:dns' is not host or host:port: write e.g. 1.1.1.1 "
        "or 127.0.0.1:5353"
    ]


# -- the fake's new endpoints, against SendGrid's published OpenAPI files -------------------


def test_the_fakes_scopes_answer_matches_the_spec(setup: SetUp) -> None:
    schema = response_schema("tsg_scopes_v3.json", SCOPES_PATH)
    answer = httpx.get(setup.fake.url + SCOPES_PATH, headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 200
    jsonschema.validate(answer.json(), schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema is not vacuous
        jsonschema.validate({"scope": ["mail.send"]}, schema)


def test_the_fakes_domains_answer_matches_the_spec(setup: SetUp) -> None:
    schema = response_schema("tsg_domain_authentication_v3.json", DOMAINS_PATH)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    setup.fake.domains = [authenticated_domain(), authenticated_domain("b.example", id_=2)]
    answer = httpx.get(setup.fake.url + DOMAINS_PATH, headers=headers)
    assert answer.status_code == 200
    jsonschema.validate(answer.json(), schema)
    assert [d["domain"] for d in answer.json()] == [DOMAIN, "b.example"]
    page = httpx.get(
        setup.fake.url + DOMAINS_PATH, params={"limit": 1, "offset": 1}, headers=headers
    )
    assert [d["domain"] for d in page.json()] == ["b.example"]
    broken = authenticated_domain()
    del broken["dns"]["dkim2"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([broken], schema)


def test_the_fake_enforces_the_scopes_it_answers(setup: SetUp) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    setup.fake.scopes = []
    assert httpx.get(setup.fake.url + DOMAINS_PATH, headers=headers).status_code == 403
    sent = httpx.post(setup.fake.url + "/v3/mail/send", headers=headers, json={})
    assert sent.status_code == 403
    assert httpx.get(setup.fake.url + SCOPES_PATH).status_code == 401
