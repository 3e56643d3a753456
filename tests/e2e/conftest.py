"""Fixtures of the end-to-end tests: real gateway processes, an HTTP client, and
headless Chromium signed in through the login form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, async_playwright

from gateway.config import Settings
from gateway.processes.worker import run_worker
from tests.e2e.browser import CHROMIUM_ARGS, Contexts
from tests.gateway_process import GatewayProcess, gateways
from tests.helpers import own_floor


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest, settings: Settings, db: Any, worker: None
) -> Iterator[GatewayProcess]:
    """One `floorbell serve` for the module, named after it."""
    process = GatewayProcess(settings, f"gw-{request.module.__name__.rsplit('_', 1)[-1]}")
    process.wait_ready()
    yield process
    process.stop()


@pytest.fixture
def spare_gateway(settings: Settings) -> Iterator[Callable[..., GatewayProcess]]:
    """Start extra instances (to kill, or with other settings); all stopped afterwards."""
    with gateways(settings) as start:
        yield start


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[Contexts]:
    opened = Contexts(browser)
    yield opened
    for context in opened.opened:
        await context.close()
    assert opened.errors == [], "uncaught errors in the page:\n" + "\n".join(opened.errors)


@pytest.fixture(scope="module")
async def floor(settings: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    """A database and key prefix of the module's own, with its own worker: for tests whose
    clock moves ahead in time (a pass "twenty minutes from now" climbs every open wait)."""
    async with own_floor(settings) as made:
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(made[0], stop))
        yield made
        stop.set()
        await asyncio.wait_for(worker, 15)


@pytest.fixture(scope="module")
def own_gateway(floor: tuple[Settings, asyncpg.Pool]) -> Iterator[GatewayProcess]:
    """A `floorbell serve` on that floor (the push emulator admitted)."""
    allow = ",".join(floor[0].push_endpoint_allow)
    process = GatewayProcess(floor[0], "gw-own-floor", PUSH_ENDPOINT_ALLOW=allow)
    process.wait_ready()
    yield process
    process.stop()
