"""The PWA's screens in headless Chromium, used as a person would: the ticket dialog,
moves on the board, reporting a problem, messages, notifications, preferences, the admin
tools and the demo logins. Each checks what the page shows against what the API says,
so a client that misreads a response fails here. Controls are found by the ids of
`web/index.html`. The browsers are a Québec plant's (fr-CA) and the demo people read
French, so the screens are checked in the customer's own words."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp
from playwright.async_api import expect

from tests.e2e.browser import FLOOR, WAIT_MS, Contexts, card_in, new_ticket, signed_in
from tests.gateway_process import GatewayProcess
from tests.helpers import api, eventually


async def test_ticket_dialog(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    ticket = await new_ticket(session, gateway, tokens, "Hydraulic hose weeps")
    page = await signed_in(contexts, gateway, "tech1")
    await page.locator(f'[data-ticket-id="{ticket["id"]}"] .card-title').click()
    dialog = page.locator("#ticket-dialog")
    await expect(dialog).to_contain_text(ticket["ticket_id"], timeout=WAIT_MS)
    await expect(dialog).to_contain_text("Seen from the browser", timeout=WAIT_MS)
    await expect(dialog).to_contain_text("Sam Supervisor")  # reported by
    await expect(page).to_have_url(re.compile(rf"\?ticket={ticket['id']}$"))

    follow = dialog.get_by_role("button", name="Suivre", exact=True)
    # Its state is known once the detail is loaded; a click before then races the load.
    await expect(follow).to_have_attribute("aria-pressed", "false", timeout=WAIT_MS)
    await follow.click()
    await expect(dialog.get_by_role("button", name="Ne plus suivre")).to_have_attribute(
        "aria-pressed", "true", timeout=WAIT_MS
    )
    detail = await api(session, gateway, tokens["tech1"], "GET", f"/api/tickets/{ticket['id']}")
    assert users["tech1"] in detail["followers"]

    await dialog.locator("#comment-body").fill("Tightened the fitting")
    await dialog.get_by_role("button", name="Ajouter le commentaire").click()
    await expect(dialog.locator("[data-comment-id]")).to_have_count(1, timeout=WAIT_MS)
    await expect(dialog).to_contain_text("Commentaires (1)")
    await expect(dialog.locator("[data-comment-id]")).to_contain_text("Theo Technician")

    # tech1 follows the ticket: the supervisor's comment reaches the open dialog live.
    body = {"body": "Check the seal as well"}
    await api(
        session,
        gateway,
        tokens["supervisor"],
        "POST",
        f"/api/tickets/{ticket['id']}/comments",
        body,
    )
    await expect(dialog.locator("[data-comment-id]")).to_have_count(2, timeout=WAIT_MS)
    await expect(dialog.locator("[data-comment-id]").last).to_contain_text("Sam Supervisor")
    await expect(page.locator("#toasts")).to_contain_text(
        f"Nouveau commentaire de Sam Supervisor sur {ticket['ticket_id']}", timeout=WAIT_MS
    )

    # A technician takes an unassigned ticket by moving it to in_progress.
    await dialog.locator("#ticket-status").select_option("in_progress")
    await expect(card_in(page, "in_progress", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
    await expect(dialog).to_contain_text("Theo Technician", timeout=WAIT_MS)
    detail = await api(session, gateway, tokens["tech1"], "GET", f"/api/tickets/{ticket['id']}")
    assert (detail["status"], detail["assigned_to"]) == ("in_progress", users["tech1"])

    await dialog.get_by_role("button", name="Fermer").click()
    await expect(page).not_to_have_url(re.compile(r"ticket="))


async def test_moves_on_the_board(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    ticket = await new_ticket(session, gateway, tokens, "Chain guard rattles")
    operator = await signed_in(contexts, gateway, "operator")
    supervisor = await signed_in(contexts, gateway, "supervisor")

    card = operator.locator(f'[data-ticket-id="{ticket["id"]}"]')
    await card.locator(".move-select").select_option("diagnostic")
    await expect(operator.locator("#board-message")).to_contain_text(
        ticket["ticket_id"], timeout=WAIT_MS
    )
    await expect(card_in(operator, "received", ticket["id"])).to_have_count(1)

    card = supervisor.locator(f'[data-ticket-id="{ticket["id"]}"]')
    await card.locator(".move-select").select_option("diagnostic")
    await expect(card_in(supervisor, "diagnostic", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
    await expect(card_in(operator, "diagnostic", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
    detail = await api(
        session, gateway, tokens["supervisor"], "GET", f"/api/tickets/{ticket['id']}"
    )
    assert detail["status"] == "diagnostic"


async def test_report_a_problem(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    page = await signed_in(contexts, gateway, "operator")
    for title, breakdown in (("Oil under the press", False), ("Motor seized", True)):
        await page.locator("#new-ticket-button").click()
        await page.locator("#new-ticket-machine").select_option(index=1)
        await page.locator("#new-ticket-title-input").fill(title)
        if breakdown:
            await page.locator("#new-ticket-form input[name=breakdown]").check()
        await page.locator("#new-ticket-form button[type=submit]").click()
        toast = page.locator("#toasts .toast", has_text="Ticket créé").last
        await expect(toast).to_contain_text(title, timeout=WAIT_MS)

        path = "/api/tickets?status=received"  # the newest first: this one on the first page
        tickets = (await api(session, gateway, tokens["operator"], "GET", path))["tickets"]
        [created] = [t for t in tickets if title in t["title"]]
        await expect(card_in(page, "received", created["id"])).to_have_count(1, timeout=WAIT_MS)
        await toast.get_by_role("button", name="Ouvrir").click()
        await expect(page.locator("#ticket-dialog")).to_contain_text(
            created["ticket_id"], timeout=WAIT_MS
        )
        await page.locator("#ticket-dialog").get_by_role("button", name="Fermer").click()


async def test_messages(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    async def send(content: str) -> None:
        body = {"message_type": "private", "recipient_id": users["tech2"], "content": content}
        await api(session, gateway, tokens["operator"], "POST", "/api/messages", body)

    await send("Is the press free at noon?")
    page = await signed_in(contexts, gateway, "tech2")
    await page.locator('[data-nav="messages"]').click()
    conversation = page.locator(f'#conversation-list [data-contact-id="{users["operator"]}"]')
    await expect(conversation).to_contain_text("Olga Operator", timeout=WAIT_MS)
    await expect(conversation).to_contain_text("Is the press free at noon?")
    await expect(conversation).to_have_class(re.compile(r"\bhas-unread\b"))

    await conversation.click()
    thread = page.locator("#thread")
    await expect(thread.locator(".bubble.theirs")).to_contain_text(
        "Is the press free at noon?", timeout=WAIT_MS
    )
    await expect(conversation).not_to_have_class(re.compile(r"\bhas-unread\b"), timeout=WAIT_MS)
    count = await api(session, gateway, tokens["tech2"], "GET", "/api/messages/unread-count")
    assert count == {"count": 0}

    await page.locator("#composer-text").fill("Yes, after the shift change")
    await page.locator("#composer-text").press("Enter")
    await expect(thread.locator(".bubble.mine")).to_contain_text(
        "Yes, after the shift change", timeout=WAIT_MS
    )
    path = f"/api/messages/private/{users['tech2']}"
    sent = await api(session, gateway, tokens["operator"], "GET", path)
    assert sent[-1]["content"] == "Yes, after the shift change"

    await send("Great, thanks")
    await expect(thread.locator(".bubble.theirs").last).to_contain_text(
        "Great, thanks", timeout=WAIT_MS
    )

    await page.locator("#audio-file").set_input_files(
        files=[{"name": "note.ogg", "mimeType": "audio/ogg", "buffer": b"OggS" + b"\0" * 60}]
    )
    audio = thread.locator(".bubble.mine audio")
    await expect(audio).to_have_count(1, timeout=WAIT_MS)
    await expect(audio).to_have_attribute("src", re.compile(r"^/api/messages/\d+/audio$"))

    await page.locator('#conversation-list [data-contact-id="public"]').click()
    await page.locator("#composer-text").fill("Hall B closed until 14:00")
    await page.locator("#composer-text").press("Enter")
    await expect(thread.locator(".bubble.mine").last).to_contain_text(
        "Hall B closed until 14:00", timeout=WAIT_MS
    )


async def test_assignment_toast_opens_the_ticket(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
    users: dict[str, int],
) -> None:
    ticket = await new_ticket(session, gateway, tokens, "Coolant pump hums")
    page = await signed_in(contexts, gateway, "tech2")
    path = f"/api/tickets/{ticket['id']}/assign"
    await api(session, gateway, tokens["supervisor"], "POST", path, {"assigned_to": users["tech2"]})

    toast = page.locator("#toasts .toast", has_text="Nouveau ticket assigné")
    await expect(toast).to_contain_text(ticket["ticket_id"], timeout=WAIT_MS)
    await expect(card_in(page, "received", ticket["id"])).to_contain_text("Tess Technician")
    await toast.get_by_role("button", name="Ouvrir").click()
    dialog = page.locator("#ticket-dialog")
    await expect(dialog).to_contain_text(ticket["title"], timeout=WAIT_MS)

    await dialog.get_by_role("button", name="J\u2019arrive (confirmer)").click()
    await expect(page.locator("#toasts")).to_contain_text("Confirmé", timeout=WAIT_MS)
    await expect(card_in(page, "in_progress", ticket["id"])).to_have_count(1, timeout=WAIT_MS)
    await dialog.get_by_role("button", name="Fermer").click()

    await page.locator('[data-nav="notifications"]').click()
    entry = page.locator("#notification-list .notification", has_text=ticket["ticket_id"])
    await expect(entry).to_have_count(1, timeout=WAIT_MS)
    await expect(entry).to_have_class(re.compile(r"\bread\b"))
    await expect(entry).to_contain_text("Assigné à vous")


async def test_preferences(
    contexts: Contexts,
    gateway: GatewayProcess,
    session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:
    page = await signed_in(contexts, gateway, "tech1")
    await page.locator('[data-nav="settings"]').click()
    rows = page.locator("#preferences-rows tr")
    await expect(rows).to_have_count(13, timeout=WAIT_MS)  # the technician's types, escalations too
    await expect(page.locator("#preferences-rows tr[data-type=user_registered]")).to_have_count(0)
    await expect(page.locator('input[name="push:new_message"]')).to_be_checked()
    await expect(page.locator('input[name="push:ticket_closed"]')).to_be_checked()
    await expect(page.locator('input[name="push:role_changed"]')).not_to_be_checked()
    await expect(page.locator("#dnd-start")).to_have_value("22:00")
    # Quiet hours never used: the device's own zone is offered.
    await expect(page.locator("#dnd-timezone")).to_have_value("America/Toronto")
    await expect(page.locator("#dnd-summary")).to_have_text(
        "Les heures de silence sont désactivées."
    )

    try:
        await page.locator('input[name="push:ticket_closed"]').uncheck()
        await page.locator("#dnd-enabled").check()
        await page.locator("#dnd-start").fill("21:30")
        await expect(page.locator("#dnd-summary")).to_have_text(
            "Silence de 21 h 30 à 06 h 00 (America/Toronto)"
        )
        await page.locator("#preferences-form button[type=submit]").click()
        await expect(page.locator("#preferences-status")).to_have_text(
            "Enregistré.", timeout=WAIT_MS
        )
        prefs = await api(
            session, gateway, tokens["tech1"], "GET", "/api/notifications/preferences"
        )
        assert prefs["types"]["ticket_closed"] == {"push": False, "inapp": True}
        assert (prefs["dnd"]["enabled"], prefs["dnd"]["start"]) == (True, "21:30")
        assert prefs["dnd"]["timezone"] == "America/Toronto"
    finally:
        restore = {
            "types": {"ticket_closed": {"push": True}},
            "dnd": {"enabled": False, "start": "22:00", "timezone": "UTC"},
        }
        await api(
            session, gateway, tokens["tech1"], "PUT", "/api/notifications/preferences", restore
        )


async def test_admin_broadcast_and_statistics(
    contexts: Contexts,
    gateway: GatewayProcess,
) -> None:
    watcher = await signed_in(contexts, gateway, "tech2")
    admin = await signed_in(contexts, gateway, "admin")
    await admin.locator('[data-nav="statistics"]').click()  # a page of its own, for admins
    latency = admin.locator('[data-chart="latency-frame"]')
    await expect(latency.locator("svg .ct-bar")).to_have_count(11, timeout=WAIT_MS)
    await expect(admin.locator('[data-chart="funnel"] figcaption')).to_contain_text(
        "Entonnoir de livraison"
    )
    await expect(watcher.locator('[data-nav="statistics"]')).to_be_hidden()
    await admin.locator('[data-nav="settings"]').click()

    await admin.locator("#broadcast-title-input").fill("Fire drill at 15:00")
    await admin.locator("#broadcast-body").fill("Assemble at gate 2")
    await admin.locator("#broadcast-form button[type=submit]").click()
    await expect(admin.locator("#toasts")).to_contain_text("Annonce envoyée", timeout=WAIT_MS)
    toast = watcher.locator("#toasts .toast", has_text="Fire drill at 15:00")
    await expect(toast).to_contain_text("Assemble at gate 2", timeout=WAIT_MS)


async def test_demo_logins_and_sign_out(
    contexts: Contexts, spare_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = spare_gateway("gw-demo", DEMO_MODE="1")  # what `make run` starts; off by default
    context = await contexts.open(**FLOOR)
    page = await context.new_page()
    await page.goto(gateway.url + "/")
    logins = page.locator("#demo-logins")
    await expect(logins).to_contain_text("Tess Technician · Technicien", timeout=WAIT_MS)
    await logins.locator(".demo-login", has_text="tech2@example.com").click()
    await expect(page.locator("#live-status")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )
    await expect(page.locator("#user-name")).to_contain_text("Tess Technician · Technicien")

    await page.reload()  # the session outlives a reload
    await expect(page.locator("#live-status")).to_have_attribute(
        "data-state", "live", timeout=WAIT_MS
    )

    await page.locator("#logout-button").click()
    await expect(page.locator("#login-flash")).to_have_text(
        "Vous êtes déconnecté.", timeout=WAIT_MS
    )
    await page.reload()
    await expect(page.locator("#login-view")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#app-view")).to_be_hidden()


async def test_service_worker_shows_pushes(contexts: Contexts, gateway: GatewayProcess) -> None:
    """Pushes in the shape of CONTRACT section 5, delivered to the worker through the
    DevTools protocol (as a push service would)."""
    context = await contexts.open()
    await context.grant_permissions(["notifications"], origin=gateway.url)
    page = await context.new_page()
    await page.goto(gateway.url + "/")
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=WAIT_MS)
    cdp = await context.new_cdp_session(page)
    # The browser holds the workers of every test's context: push to the one controlling
    # this page.
    page_target = (await cdp.send("Target.getTargetInfo"))["targetInfo"]["targetId"]
    registrations: list[str] = []
    cdp.on(
        "ServiceWorker.workerVersionUpdated",
        lambda event: registrations.extend(
            v["registrationId"] for v in event["versions"] if page_target in v["controlledClients"]
        ),
    )
    await cdp.send("ServiceWorker.enable")

    async def registered() -> bool:
        return bool(registrations)

    assert await eventually(registered, timeout_s=10), "no worker controls the page"

    assignment = {
        "title": "New ticket assigned",
        "body": "T-2026-042: Coolant pump hums",
        "icon": "/icons/icon-192.png",
        "badge": "/icons/badge-72.png",
        "tag": "ticket-42",
        "actions": [
            {"action": "view", "title": "View"},
            {"action": "acknowledge", "title": "On my way"},
        ],
        "data": {
            "url": "/?ticket=42",
            "notification_id": 7,
            "type": "ticket_assigned",
            "ticket_id": 42,
        },
    }
    trial = {
        "title": "Floorbell test",
        "body": "Push notifications work on this device.",
        "icon": "/icons/icon-192.png",
        "badge": "/icons/badge-72.png",
        "tag": "test",
        "data": {"url": "/", "notification_id": None, "type": "test"},
    }
    for payload in (assignment, trial):
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": gateway.url,
                "registrationId": registrations[-1],
                "data": json.dumps(payload),
            },
        )
    shown = """async () => (await (await navigator.serviceWorker.ready).getNotifications())
        .map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data,
                      actions: n.actions.map((a) => a.action), icon: n.icon}))"""

    async def both_shown() -> list[dict[str, Any]]:
        notifications: list[dict[str, Any]] = await page.evaluate(shown)
        return notifications if len(notifications) == 2 else []

    by_tag = {n["tag"]: n for n in await eventually(both_shown, timeout_s=10)}
    assert by_tag["ticket-42"]["title"] == "New ticket assigned"
    assert by_tag["ticket-42"]["body"] == "T-2026-042: Coolant pump hums"
    assert by_tag["ticket-42"]["actions"] == ["view", "acknowledge"]
    assert by_tag["ticket-42"]["data"] == assignment["data"]
    assert by_tag["ticket-42"]["icon"].endswith("/icons/icon-192.png")
    assert by_tag["test"]["title"] == "Floorbell test"
    assert by_tag["test"]["actions"] == []
