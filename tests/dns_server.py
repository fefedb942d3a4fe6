"""A DNS server on 127.0.0.1 (a free UDP port) answering from a dict, in a background thread.

    records = {("example.org", "TXT"): ["v=spf1 -all"], ("www.example.org", "CNAME"): ["x."]}
    with LocalDns(records) as dns:
        env["DIGEST_DNS_SERVER"] = dns.address  # "127.0.0.1:PORT"

A name with records of some type answers NOERROR (empty for the other types: "no answer");
a name with none answers NXDOMAIN. Names compare case-insensitively, without the final dot.
``records`` may be changed while it runs; ``queries`` lists every (name, type) asked.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

Records = dict[tuple[str, str], list[str]]
TTL = 60


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def _rdata(rtype: str, value: str) -> Any:
    if rtype == "TXT":
        # Long values are cut into strings of 255 bytes, as zone files do.
        return TXT([value[i : i + 255] for i in range(0, len(value), 255)] or [""])
    if rtype == "CNAME":
        return CNAME(value)
    if rtype == "A":
        return A(value)
    raise ValueError(f"LocalDns serves TXT, CNAME and A records, not {rtype}")


class _DictResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, owner: LocalDns) -> None:
        self.owner = owner

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = _key(str(request.q.qname))
        rtype = QTYPE[request.q.qtype]
        with self.owner.lock:
            self.owner.queries.append((name, rtype))
            names = {_key(n) for n, _ in self.owner.records}
            values = [
                v
                for (n, t), vs in self.owner.records.items()
                if _key(n) == name and t.upper() == rtype
                for v in vs
            ]
        if name not in names:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in values:
            rdata = _rdata(rtype, value)
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, rtype), rdata=rdata, ttl=TTL))
        return reply


class LocalDns:
    """The server; a context manager (``start``/``stop`` also work)."""

    def __init__(self, records: Records | None = None) -> None:
        self.records: Records = dict(records or {})
        self.queries: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._server: DNSServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalDns:
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self._server = DNSServer(_DictResolver(self), address="127.0.0.1", port=0, logger=quiet)
        # Not DNSServer.start_thread: its poll every 0.5 s makes each stop() wait that long.
        self._thread = threading.Thread(
            target=self._server.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"local-dns-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("call start() first")
        return int(self._server.server.server_address[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, what DIGEST_DNS_SERVER takes."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server.server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> LocalDns:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
