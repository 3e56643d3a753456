"""What the HTTP server itself decides, over a real port: whose address a request has."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from tests.gateway_process import GatewayProcess


async def test_login_limit_counts_the_address_a_local_proxy_forwards(
    spare_gateway: Callable[..., GatewayProcess], session: aiohttp.ClientSession
) -> None:
    gateway = spare_gateway("limited", LOGIN_ATTEMPTS_PER_MINUTE="1")  # 5 per address

    async def attempt(n: int, forwarded_for: str) -> int:
        body = {"email": f"nobody{n}@{forwarded_for}.example.com", "password": "wrong"}
        headers = {"X-Forwarded-For": forwarded_for}
        async with session.post(
            gateway.url + "/api/auth/login", json=body, headers=headers
        ) as response:
            return response.status

    assert [await attempt(n, "203.0.113.7") for n in range(5)] == [401] * 5
    assert await attempt(5, "203.0.113.7") == 429
    assert await attempt(6, "203.0.113.8") == 401  # another client behind the same proxy
