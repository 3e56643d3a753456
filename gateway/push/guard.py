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
_V4, _V6 = ipaddress.IPv4Network, ipaddress.IPv6Network
_NOT_GLOBAL_V4 = tuple(
    _V4(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
_GLOBAL_UNICAST = _V6("2000::/3")
# IETF protocol assignments (Teredo, benchmarking, ORCHID…), documentation.
_NOT_GLOBAL_V6 = (_V6("2001::/23"), _V6("2001:db8::/32"), _V6("3fff::/20"))
_MAPPED = _V6("::ffff:0:0/96")
_NAT64 = _V6("64:ff9b::/96")
# A host name whose last label is a number is an IPv4 address in another spelling
# (127.1, 2130706433, 0x7f.0.0.1): resolvers take it as one.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.ASCII)
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
    """Globally routable unicast, whatever the spelling: IPv4 outside every special-purpose
    block of the IANA registry (loopback, private, link-local — cloud metadata lives at
    169.254.169.254 —, shared 100.64/10, 192.0.0/24, documentation, benchmarking,
    multicast, reserved); IPv6 in global unicast 2000::/3 outside its special blocks, or an
    IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) or 6to4 address whose IPv4 is public.
    Every other IPv6 form is refused: IPv4-compatible ::a.b.c.d, IPv4-translated
    ::ffff:0:a.b.c.d, local-use NAT64 64:ff9b:1::/48, ULA, link- and site-local, multicast.
    The tables are written out, so the answer does not depend on the Python version."""
    if isinstance(address, ipaddress.IPv4Address):
        return address.is_global and not any(address in net for net in _NOT_GLOBAL_V4)
    if address in _MAPPED or address in _NAT64:
        return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        return is_public(address.sixtofour)
    return (
        address in _GLOBAL_UNICAST
        and not any(address in net for net in _NOT_GLOBAL_V6)
        and address.is_global
    )


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
        elif _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
            raise EndpointRefused(f"the endpoint's host {host!r} is an address, oddly spelt")
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
