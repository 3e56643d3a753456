"""Fixtures of the end-to-end tests: real gateway processes, an HTTP client, and
headless Chromium signed in through the login form."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    WebError,
    async_playwright,
    expect,
)

from gateway.config import Settings
from tests.conftest import PASSWORD
from tests.gateway_process import GatewayProcess

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 10_000


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
    started: list[GatewayProcess] = []

    def start(name: str, **env: str) -> GatewayProcess:
        process = GatewayProcess(settings, name, **env)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def api(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    token: str,
    method: str,
    path: str,
    body: Any = None,
) -> Any:
    """Call the API as someone; anything but success fails the test."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.request(method, gateway.url + path, json=body, headers=headers) as response:
        assert response.status < 300, (response.status, await response.text())
        return await response.json()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


class Contexts:
    """The browser contexts a test opens, closed after it, and every error their pages
    left uncaught or logged (a test with one fails). The browser's own reports of failed
    requests are expected: tests cut connections and sign out."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[BrowserContext] = []
        self.errors: list[str] = []

    async def open(self, **options: Any) -> BrowserContext:
        context = await self.browser.new_context(**options)
        context.on("weberror", self._record)
        context.on("console", self._logged)
        self.opened.append(context)
        return context

    def _record(self, error: WebError) -> None:
        self.errors.append(f"{error.page.url if error.page else '?'}: {error.error.stack}")

    def _logged(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[Contexts]:
    opened = Contexts(browser)
    yield opened
    for context in opened.opened:
        await context.close()
    assert opened.errors == [], "uncaught errors in the page:\n" + "\n".join(opened.errors)


async def signed_in(
    contexts: Contexts,
    gateway: GatewayProcess,
    name: str = "tech1",
    viewport: dict[str, int] | None = None,
) -> Page:
    """A fresh browser context, signed in through the login form, on the live board."""
    context = await contexts.open(viewport=viewport or {"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(gateway.url + "/")
    await page.locator("#login-email").fill(f"{name}@example.com")
    await page.locator("#login-password").fill(PASSWORD)
    await page.locator("#login-form button[type=submit]").click()
    await expect(page.locator("[data-status=received]")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#live-status")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )
    return page


def card_in(page: Page, status: str, ticket_id: int) -> Any:
    return page.locator(f'[data-status="{status}"] [data-ticket-id="{ticket_id}"]')


async def new_ticket(
    session: aiohttp.ClientSession, gateway: GatewayProcess, tokens: dict[str, str], title: str
) -> dict[str, Any]:
    """A ticket the supervisor reports on machine 1."""
    body = {
        "title": title,
        "description": "Seen from the browser",
        "machine_id": 1,
        "priority": "medium",
    }
    return await api(session, gateway, tokens["supervisor"], "POST", "/api/tickets", body)  # type: ignore[no-any-return]
