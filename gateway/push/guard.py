"""Where a push may go: an `https://` endpoint on a public host, never into our network.

A subscription's endpoint is a URL the browser hands us, so it is untrusted input that
makes the server send requests (SSRF). It is checked at subscribe time (the URL and every
address its host resolves to) and again on every connection the sender opens (the guard
is the sender's DNS resolver, so the addresses checked are the addresses connected to:
DNS may change after subscribing). The sender also refuses redirects.

`PUSH_ENDPOINT_ALLOW` lists origins (`http://localhost:8090`) exempt from these rules: a
local push-service emulator in tests and demos.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> [(family, address text)]
Resolve = Callable[[str, int], Awaitable[list[tuple[int, str]]]]

RESOLVE_TIMEOUT_S = 3.0
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class EndpointRefused(OSError):
    """An endpoint (or an address its host resolves to) that pushes may not go to."""


async def system_resolve(host: str, port: int) -> list[tuple[int, str]]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
    )
    return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]


def is_public(address: Address) -> bool:
    """Globally routable unicast: not loopback, private, link-local (cloud metadata lives
    at 169.254.169.254), shared (100.64/10), reserved, multicast or unspecified — also when
    an IPv4 address hides inside an IPv6 one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if address.teredo is not None:
            return False
    return address.is_global and not address.is_multicast


def _origin(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    return scheme, host.lower().rstrip("."), port or _DEFAULT_PORTS.get(scheme, 0)


@dataclass(frozen=True)
class EndpointGuard:
    allow: frozenset[tuple[str, str, int]] = frozenset()
    resolve: Resolve = system_resolve

    @classmethod
    def from_origins(
        cls, origins: Iterable[str], resolve: Resolve = system_resolve
    ) -> EndpointGuard:
        allowed = set()
        for origin in origins:
            parts = urlsplit(origin.strip())
            if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
                raise ValueError(
                    f"PUSH_ENDPOINT_ALLOW: {origin!r} is not an origin like http://host:port"
                )
            allowed.add(_origin(parts.scheme, parts.hostname, parts.port))
        return cls(frozenset(allowed), resolve)

    def check_url(self, endpoint: str) -> tuple[str, int, bool]:
        """(host, port, allow-listed) of an acceptable endpoint URL; EndpointRefused else.
        Checks everything but the addresses a host name resolves to."""
        try:
            parts = urlsplit(endpoint)
            port = parts.port
        except ValueError as exc:
            raise EndpointRefused(f"the endpoint is not a valid URL ({exc})") from None
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise EndpointRefused("the endpoint has no host")
        if parts.username is not None or parts.password is not None:
            raise EndpointRefused("the endpoint may not carry credentials")
        origin = _origin(parts.scheme.lower(), host, port)
        if origin in self.allow:
            return host, origin[2], True
        if parts.scheme.lower() != "https":
            raise EndpointRefused("the endpoint must be an https:// URL")
        literal = _ip(host)
        if literal is not None:
            if not is_public(literal):
                raise EndpointRefused(f"the endpoint's address {host} is not public")
        elif "." not in host or not all(_LABEL.match(label) for label in host.split(".")):
            raise EndpointRefused(f"the endpoint's host {host!r} is not a public DNS name")
        return host, origin[2], False

    async def public_addresses(self, host: str, port: int) -> list[tuple[int, str]]:
        """The addresses of `host`, all of them public; EndpointRefused otherwise."""
        literal = _ip(host)
        found: list[tuple[int, str]]
        if literal is not None:
            found = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, host)]
        else:
            try:
                found = await self.resolve(host, port)
            except (OSError, TimeoutError) as exc:
                reason = f"the endpoint's host {host!r} does not resolve ({exc})"
                raise EndpointRefused(reason) from exc
        if not found:
            raise EndpointRefused(f"the endpoint's host {host!r} has no address")
        for _, text in found:
            address = _ip(text)
            if address is None or not is_public(address):
                reason = f"the endpoint's host {host!r} resolves to {text}, not public"
                raise EndpointRefused(reason)
        return found

    async def check(self, endpoint: str) -> None:
        """The full subscribe-time check: the URL, then what its host resolves to."""
        host, port, allowed = self.check_url(endpoint)
        if not allowed:
            await self.public_addresses(host, port)

    def allows(self, host: str, port: int) -> bool:
        return any(h == host.lower().rstrip(".") and p == port for _, h, p in self.allow)


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """aiohttp's DNS resolver for push requests: connects only to checked addresses."""

    def __init__(self, guard: EndpointGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._guard.allows(host, port):
            found = await self._guard.resolve(host, port)
        else:
            found = await self._guard.public_addresses(host, port)
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(hostname=host, host=address, port=port, family=kind, proto=0, flags=flags)
            for kind, address in found
            if family in (socket.AF_UNSPEC, kind)
        ]

    async def close(self) -> None:
        return None


def describe(exc: BaseException) -> str:
    """A short reason for logs and push_logs.error_message."""
    text: Any = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)[:300]
