"""The sender domain's records for `digest check`: which of SendGrid's authenticated domains
covers it and the DKIM records SendGrid gives for it, then SPF, DKIM and DMARC as receiving
servers see them in DNS.

DNS is asked of ``DIGEST_DNS_SERVER`` when set ("host" or "host:port"), else of the system's
resolver, with short timeouts. Each check returns its problems as lines naming the record
and what to add; ``dns_problems`` runs them in order and stops at the first lookup the
server did not answer (that line names the record), so a dead resolver costs one timeout,
not one per record.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.resolver

from digest.errors import ConfigError

TIMEOUT = 2.0  # seconds for one try at one server
LIFETIME = 3.0  # seconds for one lookup, every try included
DNS_PORT = 53
SPF_EXAMPLE = "v=spf1 include:sendgrid.net ~all"


class DnsUnanswered(Exception):
    """The DNS server did not answer (or failed): the other DNS checks would only wait too."""


@dataclass(frozen=True, slots=True)
class SenderRecord:
    """A record SendGrid asks the sender to publish (``dns.dkim1`` of an authenticated domain)."""

    label: str  # "dkim1", "dkim2"
    kind: str  # "cname" or "txt", as SendGrid gives it
    host: str
    data: str


@dataclass(frozen=True, slots=True)
class _Answer:
    texts: list[str]
    why_none: str  # when texts is empty: why, in words


class Dns:
    """One resolver, and how to name it in a line."""

    def __init__(self, server: str | None) -> None:
        self.where = f"the DNS server {server}" if server else "the system's DNS resolver"
        self.resolver = _resolver(server)

    def lookup(self, name: str, rdtype: str) -> _Answer:
        """The records of one type at ``name`` as text; none, with why, when there are none."""
        try:
            answer = self.resolver.resolve(dns.name.from_text(name), rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return _Answer([], f"{name} does not exist in DNS")
        except dns.resolver.NoAnswer:
            return _Answer([], f"{name} has no {rdtype} record")
        except dns.exception.Timeout:
            raise DnsUnanswered(
                f"{self.where} did not answer within {LIFETIME:g} s when asked for the "
                f"{rdtype} record of {name}: check DIGEST_DNS_SERVER or the network "
                "(the other DNS checks were not run)"
            ) from None
        except dns.exception.DNSException as exc:  # SERVFAIL from every server, and the like
            raise DnsUnanswered(
                f"{self.where} failed when asked for the {rdtype} record of {name} ({exc}): "
                "check DIGEST_DNS_SERVER or the network (the other DNS checks were not run)"
            ) from None
        if rdtype == "TXT":
            texts = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        else:
            texts = [r.to_text().rstrip(".").lower() for r in answer]
        return _Answer(texts, f"{name} has no {rdtype} record")


def dns_problems(
    server: str | None, domain: str, records: Sequence[SenderRecord]
) -> Iterator[tuple[str, list[str]]]:
    """(check, its problems) for SPF, DKIM (when there are SendGrid's records) and DMARC, in
    that order; none after a lookup the server did not answer (that problem says so)."""
    try:
        dns_ = Dns(server)
    except ConfigError as exc:
        yield "DNS", [str(exc)]
        return
    checks: list[tuple[str, Callable[[], list[str]]]] = [
        ("SPF", lambda: spf_problems(dns_, domain)),
        ("DKIM", lambda: dkim_problems(dns_, records)),
        ("DMARC", lambda: dmarc_problems(dns_, domain)),
    ]
    for name, check in checks:
        if name == "DKIM" and not records:
            continue
        try:
            yield name, check()
        except DnsUnanswered as exc:
            yield name, [str(exc)]
            return


def spf_problems(dns_: Dns, domain: str) -> list[str]:
    """A TXT record on the sender domain starting ``v=spf1``, and only one."""
    found = dns_.lookup(domain, "TXT")
    spf = [t for t in found.texts if t.lower().startswith("v=spf1")]
    if not spf:
        why = found.why_none if not found.texts else f"no TXT record of {domain} is one"
        return [
            f"no SPF record for {domain} ({why}): add a TXT record on {domain} "
            f'such as "{SPF_EXAMPLE}"'
        ]
    if len(spf) > 1:
        return [
            f"{domain} has {len(spf)} SPF records (receivers then ignore them all): merge "
            "them into one TXT record starting v=spf1"
        ]
    return []


def dmarc_problems(dns_: Dns, domain: str) -> list[str]:
    """A TXT record starting ``v=DMARC1`` at ``_dmarc.<domain>``, or at a parent domain's
    (receivers fall back to the organisation's domain, so a policy there covers us)."""
    why = ""
    for name in _dmarc_names(domain):
        found = dns_.lookup(name, "TXT")
        dmarc = [t for t in found.texts if t.replace(" ", "").upper().startswith("V=DMARC1")]
        if len(dmarc) == 1:
            return []
        if len(dmarc) > 1:
            return [
                f"{name} has {len(dmarc)} DMARC records (receivers then ignore them all): keep one"
            ]
        if not why:
            why = found.why_none if not found.texts else f"no TXT record of {name} is one"
    return [
        f"no DMARC record at _dmarc.{domain} ({why}): add a TXT record _dmarc.{domain} "
        f'such as "v=DMARC1; p=none; rua=mailto:dmarc@{domain}" (Gmail and Yahoo want '
        "one from bulk senders)"
    ]


def dkim_problems(dns_: Dns, records: Sequence[SenderRecord]) -> list[str]:
    """Each DKIM record SendGrid gave for the domain is published: a CNAME at its host
    pointing to its data (or, for a TXT record, a TXT holding it)."""
    problems = []
    for record in records:
        if record.kind.lower() == "txt":
            problems += _dkim_txt_problems(dns_, record)
            continue
        found = dns_.lookup(record.host, "CNAME")
        wanted = record.data.rstrip(".").lower()
        if not found.texts:
            problems.append(
                f"the DKIM record {record.host} is missing ({found.why_none}): add a CNAME "
                f"record {record.host} pointing to {record.data} (SendGrid lists it under "
                "Settings > Sender Authentication)"
            )
        elif wanted not in found.texts:
            problems.append(
                f"the DKIM record {record.host} points to {', '.join(found.texts)}, not "
                f"{record.data}: change the CNAME to {record.data}"
            )
    return problems


def sender_domain(domains: list[dict[str, Any]], domain: str) -> dict[str, Any] | None:
    """The authenticated domain covering ``domain`` (itself or a parent): a valid one
    first, then the most specific."""
    covering = [
        d
        for d in domains
        if (name := d["domain"].lower().rstrip(".")) == domain or domain.endswith("." + name)
    ]
    covering.sort(key=lambda d: (d.get("valid") is True, len(d["domain"])), reverse=True)
    return covering[0] if covering else None


def sender_domain_problems(entry: dict[str, Any] | None, domain: str) -> list[str]:
    """The sender domain is authenticated in SendGrid, and SendGrid found its records."""
    if entry is None:
        return [
            f"the sender domain {domain} is not authenticated in SendGrid: "
            "Settings > Sender Authentication"
        ]
    if entry.get("valid") is not True:
        return [
            f"the sender domain {domain} is authenticated in SendGrid (as {entry['domain']}) "
            "but not verified: publish the DNS records SendGrid lists under Settings > "
            "Sender Authentication, then press Verify"
        ]
    return []


def dkim_records(entry: dict[str, Any]) -> list[SenderRecord]:
    """The ``dns.dkim1`` and ``dns.dkim2`` records of an authenticated domain."""
    given = entry.get("dns")
    records: dict[str, Any] = given if isinstance(given, dict) else {}
    out = []
    for label in ("dkim1", "dkim2"):
        r = records.get(label)
        if isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("host", "data")):
            out.append(SenderRecord(label, str(r.get("type") or "cname"), r["host"], r["data"]))
    return out


def _dkim_txt_problems(dns_: Dns, record: SenderRecord) -> list[str]:
    found = dns_.lookup(record.host, "TXT")
    if any(record.data.replace(" ", "") in t.replace(" ", "") for t in found.texts):
        return []
    why = found.why_none if not found.texts else "its TXT records hold other values"
    return [
        f"the DKIM record {record.host} is missing ({why}): add the TXT record SendGrid "
        "lists for it under Settings > Sender Authentication"
    ]


def _dmarc_names(domain: str) -> list[str]:
    """``_dmarc.`` on the domain, then on each parent short of the top-level domain."""
    labels = domain.rstrip(".").split(".")
    return [f"_dmarc.{'.'.join(labels[i:])}" for i in range(max(len(labels) - 1, 1))]


def _resolver(server: str | None) -> dns.resolver.Resolver:
    if server is None:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise ConfigError(
                "this machine has no DNS resolver configured (/etc/resolv.conf): set "
                "DIGEST_DNS_SERVER to one (host or host:port)"
            ) from None
    else:
        host, port = _host_and_port(server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.timeout = TIMEOUT
    resolver.lifetime = LIFETIME
    resolver.cache = None
    return resolver


def _host_and_port(server: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; a name is looked up."""
    value = server.strip()
    host, port = value, str(DNS_PORT)
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif value.count(":") == 1:
        host, port = value.split(":", 1)
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(
            f"DIGEST_DNS_SERVER {server!r} is not host or host:port: write e.g. 1.1.1.1 "
            "or 127.0.0.1:5353"
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = str(socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0][4][0])
        except (socket.gaierror, UnicodeError) as exc:
            raise ConfigError(
                f"DIGEST_DNS_SERVER {server!r}: cannot find the address of {host} ({exc}): "
                "write the server's IP address"
            ) from None
    return host, int(port)
