"""Which network addresses digest fetches from, and connections pinned to a checked address.

Anything that fetches a URL somebody else wrote (a source, a redirect, a link in an
edition) goes through these rules: a public address is fetched; loopback, private,
link-local, shared (CGNAT), multicast, unspecified and reserved ones are refused with a
plain reason. A host name is resolved once, every address it has is checked, and the
connection goes to the address that was checked: a DNS server cannot answer "public"
to the check and "127.0.0.1" to the connection.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import httpcore
import httpx

Address = IPv4Address | IPv6Address

SHARED = ip_network("100.64.0.0/10")  # carrier-grade NAT; Python counts it neither way

_RULES: list[tuple[str, Callable[[Address], bool]]] = [
    ("an unspecified address", lambda ip: ip.is_unspecified),
    ("a loopback address", lambda ip: ip.is_loopback),
    ("a link-local address", lambda ip: ip.is_link_local),
    ("a multicast address", lambda ip: ip.is_multicast),
    ("a shared (CGNAT) address", lambda ip: ip in SHARED),
    ("a reserved address", lambda ip: ip.is_reserved),
    ("a private address", lambda ip: ip.is_private),
    ("not a public address", lambda ip: not ip.is_global),
]


def refusal(address: str | Address) -> str | None:
    """Why digest does not connect to ``address`` ("a loopback address", ...), or None
    for a public address. An IPv4 address inside an IPv6 one is judged as IPv4."""
    ip = ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, IPv6Address):
        inner = ip.ipv4_mapped if ip.ipv4_mapped is not None else ip.sixtofour
        if inner is not None:
            why = refusal(inner)
            if ip.ipv4_mapped is not None:
                return f"{why or 'an IPv4 address'} written as IPv6"
            if why:
                return f"{why} inside a 6to4 address"
    return next((why for why, applies in _RULES if applies(ip)), None)


class AddressRefused(Exception):
    """A host that resolved to an address digest does not connect to."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host, self.address, self.reason = host, address, reason
        # How to say it after a URL: "(a loopback address)", "(vm is 127.0.0.1, a ...)".
        self.why = reason if host == address else f"{host} is {address}, {reason}"
        super().__init__(f"{host} resolves to {address}, {reason}")


async def checked_addresses(host: str, port: int, *, allow_private: bool = False) -> list[str]:
    """Every address ``host`` resolves to, looked up once; AddressRefused when any is not
    public (unless ``allow_private``). Raises OSError when the name does not resolve."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        reason = refusal(address.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") aside
        if reason and not allow_private:
            raise AddressRefused(host, address, reason)
    return addresses


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer, connecting only to addresses checked_addresses() passed.

    httpcore hands it the URL's host and port; it resolves the host once, checks, and
    connects to the checked IP itself, so the URL, the Host header and TLS (SNI and the
    certificate's name) still use the host name. ``allowed`` is one (host, port) that may
    be private: a source configured with allow_private = true.
    """

    def __init__(self, allowed: tuple[str, int] | None = None) -> None:
        self._allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(
                host, port, allow_private=(host, port) == self._allowed
            )
        except OSError as exc:
            raise httpcore.ConnectError(f"the host name {host} does not resolve") from exc
        failure = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a Unix socket is not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_transport(
    ssl_context: ssl.SSLContext, allowed: tuple[str, int] | None = None
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through PinnedBackend. No proxy:
    one would resolve names itself, past the check."""
    transport = httpx.AsyncHTTPTransport(verify=ssl_context)
    # httpx has no public way to give httpcore a network backend: swap the connection
    # pool it built for the same pool on ours (respx mocks the pool class, so it still
    # intercepts in tests).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=10,
        keepalive_expiry=5.0,
        network_backend=PinnedBackend(allowed),
    )
    return transport


def origin(url: str | httpx.URL) -> tuple[str, int]:
    """(host, port) as httpcore names a connection: the host as sent, the default port
    filled in."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.raw_host.decode("ascii"), port
