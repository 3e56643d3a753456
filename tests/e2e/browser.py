"""Helpers of the browser tests: headless Chromium contexts that fail a test on any page
error, signing in through the login form, and the board's hooks."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, WebError, expect

from tests.gateway_process import GatewayProcess
from tests.helpers import PASSWORD, api

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 10_000


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


# The people on the floor: a Québec plant's browsers.
FLOOR = {"locale": "fr-CA", "timezone_id": "America/Toronto"}


async def signed_in(
    contexts: Contexts,
    gateway: GatewayProcess,
    name: str = "tech1",
    viewport: dict[str, int] | None = None,
    **options: Any,
) -> Page:
    """A fresh browser context (French, Québec, unless `options` say otherwise), signed in
    through the login form, on the live board."""
    context = await contexts.open(
        viewport=viewport or {"width": 1280, "height": 800}, **(FLOOR | options)
    )
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
