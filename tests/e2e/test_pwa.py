"""The PWA in real headless Chromium against a real gateway process: login, the live
board, presence, badges, resume after a dropped connection, installability, screenshots.

Only the stable hooks of the contract (section 6) are relied on for assertions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from tests.e2e.browser import WAIT_MS, Contexts, card_in, new_ticket, signed_in
from tests.gateway_process import GatewayProcess, open_stream
from tests.helpers import api, eventually

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
STATUSES = ["received", "diagnostic", "in_progress", "waiting_parts", "completed", "archived"]


async def test_login_renders_board(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    page = await signed_in(contexts, gateway)
    for status in STATUSES:
        await expect(page.locator(f"[data-status={status}]")).to_have_count(1, timeout=WAIT_MS)
    tickets = await api(session, gateway, tokens["tech1"], "GET", "/api/tickets")
    assert tickets, "the demo data has tickets"
    cards = page.locator("[data-status] [data-ticket-id]")
    await expect(cards).to_have_count(len(tickets), timeout=WAIT_MS)
    for ticket in tickets:
        await expect(card_in(page, ticket["status"], ticket["id"])).to_have_count(1)


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


class DroppingProxy:
    """A TCP proxy in front of the gateway that can cut every connection, as a flaky
    shop-floor network does: `drop()` closes all and refuses new ones until `restore()`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def drop(self) -> None:
        self.up = False
        for writer in list(self.writers):
            writer.transport.abort()

    def restore(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.drop()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


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
    proxy = DroppingProxy(gateway.port)
    via = Via(await proxy.start())
    try:
        page = await signed_in(contexts, via)  # type: ignore[arg-type]
        await page.wait_for_load_state("networkidle")
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))

        proxy.drop()
        ticket = await new_ticket(session, gateway, tokens, "Created while the network was down")
        await page.wait_for_timeout(300)
        await expect(page.locator(f'[data-ticket-id="{ticket["id"]}"]')).to_have_count(0)
        proxy.restore()

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
        await proxy.close()


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
