"""Where a service may send traffic it did not choose (a card URL, a push-notification webhook): http(s) only and,
unless allowed (a local market), no private, loopback, link-local or reserved address.

Two checks: `check_url` before a request, for a clear early refusal; and `checked_transport`, an httpx transport
that resolves a name once per connection, checks every address the answer holds and connects to the checked
address itself. A name whose answer changes between a check and a connection (DNS rebinding) therefore cannot
send a connection anywhere the check did not see.
"""

from __future__ import annotations

import asyncio
import ipaddress
import typing
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpcore
import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]  # (host, port) -> the addresses it resolves to


class AddressRefused(Exception):
    """The URL may not be contacted; the message says why."""


class ConnectionRefusedByPolicy(httpcore.ConnectError):
    """A connection `checked_transport` would not open (httpx raises it as `httpx.ConnectError`, message kept)."""


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    return [str(info[4][0]).split("%")[0] for info in infos]


def nameserver_resolver(address: str, timeout_s: float = 5.0) -> Resolver:
    """Names looked up at one name server (`host:port`, DNS over UDP) instead of the system's resolver: for an
    operator who pins the resolver its services trust (COALESCE_NAMESERVER), and for a test that runs a name
    server of its own on loopback. A and AAAA records, no cache (every connection asks again)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a name server is host:port, not {address!r}")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host.strip("[]")]
    resolver.port = int(port)
    resolver.lifetime = timeout_s

    async def resolve(name: str, port: int) -> list[str]:
        addresses: list[str] = []
        for record_type in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(name, record_type)
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.DNSException as error:
                raise OSError(f"{name}: {type(error).__name__}: {error}") from None
            addresses.extend(str(record.address) for record in answer)
        return addresses

    return resolve


def resolver(nameserver: str | None) -> Resolver:
    """The name server's resolver, or the system's when there is none."""
    return nameserver_resolver(nameserver) if nameserver else system_resolve


def refusal(host: str, addresses: list[str]) -> str | None:
    """Why connecting to `host` at `addresses` is refused, or None when every address is public."""
    for address in addresses:
        if not ipaddress.ip_address(address).is_global:
            return f"{host} resolves to {address}, a private, loopback or reserved address"
    return None


async def check_url(url: str, allow_private: bool, timeout_s: float = 5.0, resolve: Resolver = system_resolve) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(f"{url}: only http and https URLs are fetched")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await asyncio.wait_for(resolve(parts.hostname, port), timeout=timeout_s)
    except (OSError, TimeoutError, ValueError) as error:
        raise AddressRefused(f"{url}: cannot resolve {parts.hostname}: {error}") from None
    reason = refusal(parts.hostname, addresses)
    if reason is not None:
        raise AddressRefused(f"{url}: {reason}")


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses it resolved and checked itself, one lookup per connection."""

    def __init__(
        self,
        allow_private: bool,
        timeout_s: float = 5.0,
        resolve: Resolver = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.resolve = resolve
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface passes it by name)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await asyncio.wait_for(self.resolve(host, port), timeout=self.timeout_s)
            except (OSError, TimeoutError, ValueError) as error:
                raise ConnectionRefusedByPolicy(f"cannot resolve {host}: {error}") from None
        if not addresses:
            raise ConnectionRefusedByPolicy(f"{host} resolves to no address")
        reason = None if self.allow_private else refusal(host, addresses)
        if reason is not None:
            raise ConnectionRefusedByPolicy(f"refused: {reason}")
        return await self.inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface passes it by name)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ConnectionRefusedByPolicy("unix sockets are not contacted")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection goes through a `CheckedBackend`. TLS
    still verifies the certificate against the host name of the URL (httpcore passes it apart from the address)."""

    def __init__(self, backend: CheckedBackend, max_connections: int = 100) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            network_backend=backend,
        )


def checked_transport(
    allow_private: bool, timeout_s: float = 5.0, resolve: Resolver = system_resolve, max_connections: int = 100
) -> CheckedTransport:
    return CheckedTransport(CheckedBackend(allow_private, timeout_s, resolve), max_connections)
