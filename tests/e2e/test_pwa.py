"""The PWA in real headless Chromium against a real gateway process: login, the live
board, presence, badges, resume after a dropped connection, installability, screenshots.

Only the stable hooks of the contract (section 6) are relied on for assertions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from playwright.async_api import expect

from tests.e2e.browser import WAIT_MS, Contexts, card_in, new_ticket, signed_in
from tests.faults.proxy import Proxy
from tests.gateway_process import GatewayProcess, open_stream
from tests.helpers import api, eventually

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
STATUSES = ["received", "diagnostic", "in_progress", "waiting_parts", "completed", "archived"]
OPEN, CLOSED = STATUSES[:4], STATUSES[4:]
CLOSED_PAGE = 20  # cards a closed column shows before "Show older" (web/board.js)


async def tickets_page(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    token: str,
    status: str,
    limit: int,
    cursor: str | None = None,
) -> Any:
    query = {"status": status, "limit": limit} | ({"cursor": cursor} if cursor else {})
    return await api(session, gateway, token, "GET", f"/api/tickets?{urlencode(query)}")


async def column(
    session: aiohttp.ClientSession, gateway: GatewayProcess, token: str, status: str
) -> list[Any]:
    """Every card of a column, page after page."""
    cards, cursor = [], None
    while True:
        page = await tickets_page(session, gateway, token, status, 500, cursor)
        cards += page["tickets"]
        if (cursor := page["next_cursor"]) is None:
            return cards


async def test_login_renders_board(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    page = await signed_in(contexts, gateway)
    for status in STATUSES:
        await expect(page.locator(f"[data-status={status}]")).to_have_count(1, timeout=WAIT_MS)
    token = tokens["tech1"]
    tickets = [t for status in OPEN for t in await column(session, gateway, token, status)]
    for status in CLOSED:  # the latest cards only
        tickets += (await tickets_page(session, gateway, token, status, CLOSED_PAGE))["tickets"]
    assert tickets, "the demo data has tickets"
    cards = page.locator("[data-status] [data-ticket-id]")
    await expect(cards).to_have_count(len(tickets), timeout=WAIT_MS)
    for ticket in tickets:
        await expect(card_in(page, ticket["status"], ticket["id"])).to_have_count(1)


async def test_older_closed_cards_load_on_demand(
    contexts: Contexts, gateway: GatewayProcess, db: Any
) -> None:
    ids = await db.fetch(
        "INSERT INTO tickets (ticket_id, title, machine_id, priority, status, reported_by,"
        " closed_at) SELECT 'T-1999-' || gen_random_uuid(), 'Done long ago ' || n, 1, 'low',"
        " 'completed', 1, now() FROM generate_series(1, $1) AS n RETURNING id",
        CLOSED_PAGE + 5,
    )
    page = await signed_in(contexts, gateway)
    completed = page.locator('[data-status="completed"] [data-ticket-id]')
    await expect(completed).to_have_count(CLOSED_PAGE, timeout=WAIT_MS)  # the newest: ours
    await page.locator('[data-more="completed"]').click()
    for row in ids:
        await expect(card_in(page, "completed", row["id"])).to_have_count(1, timeout=WAIT_MS)
    assert await completed.count() > CLOSED_PAGE


async def test_board_is_live(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    page = await signed_in(contexts, gateway)
    navigations: list[str] = []
    page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
    )

    ticket = await new_ticket(session, gateway, tokens, "Live card from the supervisor")
    await expect(card_in(page, "received", ticket["id"])).to_have_count(1, timeout=WAIT_MS)

    await api(
        session,
        gateway,
        tokens["supervisor"],
        "PUT",
        f"/api/tickets/{ticket['id']}",
        {"status": "diagnostic"},
    )
    await expect(card_in(page, "diagnostic", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator(f'[data-ticket-id="{ticket["id"]}"]')).to_have_count(1)
    assert [url for url in navigations if "#" not in url] == [], "the page was reloaded"


async def test_presence(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    async def operator_offline() -> bool:
        snapshot = await api(session, gateway, tokens["tech1"], "GET", "/api/presence")
        return any(p["user_id"] == users["operator"] and not p["online"] for p in snapshot)

    assert await eventually(operator_offline, timeout_s=10), (
        "the operator is still online from elsewhere"
    )
    page = await signed_in(contexts, gateway)
    entry = page.locator(f'[data-presence-user="{users["operator"]}"]').first
    await expect(entry).to_have_attribute("data-online", "false", timeout=WAIT_MS)

    stream = await open_stream(session, gateway.url, tokens["operator"])
    try:
        await stream.next_event()  # connected
        await expect(entry).to_have_attribute("data-online", "true", timeout=WAIT_MS)
    finally:
        stream.response.close()
    await expect(entry).to_have_attribute("data-online", "false", timeout=WAIT_MS)


async def test_badges_follow_across_pages(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    async def unread(path: str) -> int:
        return int((await api(session, gateway, tokens["tech1"], "GET", path))["count"])

    before_notifications = await unread("/api/notifications/unread-count")
    before_messages = await unread("/api/messages/unread-count")
    first = await signed_in(contexts, gateway)
    notifications_badge = first.locator("[data-unread-notifications]").first
    messages_badge = first.locator("[data-unread-messages]").first
    await expect(notifications_badge).to_have_text(str(before_notifications), timeout=WAIT_MS)
    await expect(messages_badge).to_have_text(str(before_messages), timeout=WAIT_MS)

    body = {
        "message_type": "private",
        "recipient_id": users["tech1"],
        "content": "Belt 3 squeaks again",
    }
    await api(session, gateway, tokens["operator"], "POST", "/api/messages", body)
    await expect(messages_badge).to_have_text(str(before_messages + 1), timeout=WAIT_MS)
    await expect(notifications_badge).to_have_text(str(before_notifications + 1), timeout=WAIT_MS)

    second = await signed_in(contexts, gateway)
    await second.locator('[data-nav="notifications"]').click()
    await expect(second.locator("#notification-list")).to_contain_text(
        "Belt 3 squeaks again", timeout=WAIT_MS
    )
    await second.locator("#mark-all-read").click()
    await expect(second.locator("[data-unread-notifications]").first).to_have_text(
        "0", timeout=WAIT_MS
    )
    await expect(notifications_badge).to_have_text("0", timeout=WAIT_MS)


class Via:
    """Stands in for a GatewayProcess, with the proxy's address."""

    def __init__(self, url: str) -> None:
        self.url = url


async def test_resume_after_forced_disconnect(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    proxy = Proxy("127.0.0.1", gateway.port)
    await proxy.start()
    via = Via(f"http://127.0.0.1:{proxy.port}")
    try:
        page = await signed_in(contexts, via)  # type: ignore[arg-type]
        await page.wait_for_load_state("networkidle")
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))

        # The stream drops, and the page's reconnect waits unanswered (however long the
        # ticket takes to create, the page sees one failure, not enough to start polling).
        proxy.hold()
        proxy.cut()
        ticket = await new_ticket(session, gateway, tokens, "Created while the network was down")
        await page.wait_for_timeout(300)
        await expect(page.locator(f'[data-ticket-id="{ticket["id"]}"]')).to_have_count(0)
        proxy.release()

        await expect(card_in(page, "received", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
        await expect(page.locator("#live-status")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        streams = [url for url in requests if "/api/sse/stream" in url]
        assert streams and all("last_event_id=" in url for url in streams), streams
        refetches = [url for url in requests if "/api/tickets" in url]
        assert refetches == [], (
            f"the card came from a refetch, not from the resumed stream: {refetches}"
        )
    finally:
        await proxy.stop()


async def test_installable(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
) -> None:
    context = await contexts.open()
    page = await context.new_page()
    await page.goto(gateway.url + "/")
    scope = await page.evaluate(
        """() => Promise.race([
             navigator.serviceWorker.ready.then((r) => r.active ? r.scope : 'no active worker'),
             new Promise((resolve) => setTimeout(() => resolve('timed out'), 10000)),
           ])"""
    )
    assert scope == gateway.url + "/"

    async with session.get(gateway.url + "/manifest.webmanifest") as response:
        assert response.status == 200
        manifest = json.loads(await response.text())
    assert manifest["name"] and manifest["start_url"]
    assert manifest["display"] in {"standalone", "fullscreen", "minimal-ui"}
    sizes = {size for icon in manifest["icons"] for size in icon["sizes"].split()}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        async with session.get(gateway.url + "/" + icon["src"].lstrip("/")) as response:
            assert response.status == 200, icon["src"]
            assert response.headers["Content-Type"].startswith("image/png"), icon["src"]
            assert (await response.read()).startswith(b"\x89PNG\r\n\x1a\n"), icon["src"]


@pytest.mark.parametrize(
    ("label", "width", "height"), [("desktop", 1280, 800), ("phone", 390, 844)]
)
async def test_screenshots(
    contexts: Contexts,
    gateway: GatewayProcess,
    label: str,
    width: int,
    height: int,
) -> None:
    page = await signed_in(contexts, gateway, viewport={"width": width, "height": height})
    await expect(page.locator("[data-ticket-id]").first).to_be_attached(timeout=WAIT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"board-{label}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    assert await page.evaluate("document.documentElement.scrollWidth") <= width + 1, (
        "no horizontal page scroll"
    )
