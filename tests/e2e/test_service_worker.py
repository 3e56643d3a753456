"""The service worker's side of a push, in real Chromium: a click on a shown notification
focuses the open app on `data.url` and reports the click; the "acknowledge" action says
"on my way" for the ticket. And the polling fallback when the stream is unavailable,
with its banner.

A click on a system notification is not something a headless browser can make, so the
test shows a real notification from the worker and dispatches the `notificationclick`
event there, with the worker's own event class (its `waitUntil` kept from refusing an
event the browser did not raise). Opening a new window needs a real user's click: only
the focus-and-navigate path of `focusOrOpen` is exercised.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
from playwright.async_api import Page, Worker, expect

from tests.e2e.browser import WAIT_MS, Contexts, card_in, new_ticket, signed_in
from tests.gateway_process import GatewayProcess
from tests.helpers import api, eventually

CLICK = """async ({data, action}) => {
  const tag = `click-${Math.random()}`;
  await self.registration.showNotification('A ticket for you', {
    tag, data,
    actions: [{action: 'view', title: 'View'}, {action: 'acknowledge', title: 'On my way'}],
  });
  const [notification] = await self.registration.getNotifications({tag});
  const event = new NotificationEvent('notificationclick', {notification, action});
  Object.defineProperty(event, 'waitUntil', {value: () => {}});
  self.dispatchEvent(event);
  return notification.data;
}"""


async def worker_of(page: Page) -> Worker:
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT_MS)

    async def found() -> Worker | None:
        workers = [w for w in page.context.service_workers if w.url.endswith("/sw.js")]
        return workers[0] if workers else None

    worker = await eventually(found, timeout_s=10)
    assert worker is not None
    return worker


async def assigned_to_tech1(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    tokens: dict[str, str],
    users: dict[str, int],
    db: asyncpg.Pool,
) -> tuple[dict[str, Any], int]:
    ticket = await new_ticket(session, gateway, tokens, "Coolant pump hums")
    path = f"/api/tickets/{ticket['id']}/assign"
    await api(session, gateway, tokens["supervisor"], "POST", path, {"assigned_to": users["tech1"]})

    async def notified() -> int | None:
        found: int | None = await db.fetchval(
            "SELECT id FROM notifications WHERE user_id = $1 AND type = 'ticket_assigned'"
            " AND (data->>'ticket_id')::bigint = $2",
            users["tech1"],
            ticket["id"],
        )
        return found

    notification_id = await eventually(notified, timeout_s=10)
    return ticket, notification_id


def payload(ticket: dict[str, Any], notification_id: int) -> dict[str, Any]:
    return {
        "url": f"/?ticket={ticket['id']}",
        "notification_id": notification_id,
        "type": "ticket_assigned",
        "ticket_id": ticket["id"],
    }


async def clicked_at(db: asyncpg.Pool, notification_id: int) -> Any:
    return await db.fetchval("SELECT clicked_at FROM notifications WHERE id = $1", notification_id)


async def test_a_click_opens_the_ticket_in_the_app_and_is_reported(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
    users: dict[str, int],
    db: asyncpg.Pool,
) -> None:
    page = await signed_in(contexts, gateway)
    await page.context.grant_permissions(["notifications"], origin=gateway.url)
    worker = await worker_of(page)
    ticket, notification_id = await assigned_to_tech1(session, gateway, tokens, users, db)
    await worker.evaluate(CLICK, {"data": payload(ticket, notification_id), "action": ""})
    await expect(page.locator("#ticket-dialog")).to_contain_text(
        ticket["ticket_id"], timeout=WAIT_MS
    )
    assert await eventually(lambda: clicked_at(db, notification_id))


async def test_the_acknowledge_action_says_on_my_way(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
    users: dict[str, int],
    db: asyncpg.Pool,
) -> None:
    page = await signed_in(contexts, gateway)
    await page.context.grant_permissions(["notifications"], origin=gateway.url)
    worker = await worker_of(page)
    ticket, notification_id = await assigned_to_tech1(session, gateway, tokens, users, db)
    await expect(card_in(page, "received", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
    data = payload(ticket, notification_id)
    await worker.evaluate(CLICK, {"data": data, "action": "acknowledge"})

    async def on_the_way() -> bool:
        status = await db.fetchval("SELECT status FROM tickets WHERE id = $1", ticket["id"])
        return bool(status == "in_progress")

    assert await eventually(on_the_way)
    await expect(card_in(page, "in_progress", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
    assert await eventually(lambda: clicked_at(db, notification_id))
    await expect(page.locator("#ticket-dialog")).to_be_hidden()  # acknowledged, not opened


async def test_without_a_stream_the_app_polls_and_says_so(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    page = await signed_in(contexts, gateway)
    await page.context.route(
        "**/api/sse/stream*",
        lambda route: route.fulfill(status=503, body='{"error": {"code": "x", "message": "x"}}'),
    )
    await page.reload()
    banner = page.locator("#live-banner")
    await expect(banner).to_be_visible(timeout=WAIT_MS * 2)
    await expect(banner).to_contain_text("Mises à jour en direct indisponibles")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "polling")
    ticket = await new_ticket(session, gateway, tokens, "Seen by polling")
    await expect(card_in(page, "received", ticket["id"])).to_have_count(1, timeout=WAIT_MS)

    await page.context.unroute("**/api/sse/stream*")
    await expect(page.locator("#live-status")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS * 4
    )
    await expect(banner).to_be_hidden()
