"""The escalation and the statistics in Chromium, on a floor of its own (the clock's pass
is given the moment it runs at): a breakdown's card shows how long it has waited, the
escalation arrives live on every open board, the ticket tells its timeline, and the
admins' statistics page draws its charts from the real data. Screenshots under
tests/artifacts/."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from playwright.async_api import expect

from gateway.clock.escalation import climb
from gateway.config import Settings
from tests.e2e.browser import WAIT_MS, Contexts, card_in, signed_in
from tests.gateway_process import GatewayProcess
from tests.helpers import api, token_for

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
Floor = tuple[Settings, asyncpg.Pool]


async def bar_values(figure: Any) -> list[float]:
    values: list[float] = await figure.locator("svg .ct-bar").evaluate_all(
        "bars => bars.map((bar) => Number(bar.getAttribute('ct:value')))"
    )
    return values


async def person(floor: Floor, name: str) -> tuple[int, str]:
    row = await floor[1].fetchrow(
        "SELECT id, role FROM users WHERE email = $1", f"{name}@example.com"
    )
    return row["id"], token_for(floor[0].jwt_secret, row["id"], row["role"])


async def test_a_breakdown_waits_escalates_live_and_the_statistics_draw_it(
    floor: Floor, own_gateway: GatewayProcess, contexts: Contexts,
    session: aiohttp.ClientSession,
) -> None:  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    supervisor = await signed_in(contexts, own_gateway, "supervisor")
    technician = await signed_in(contexts, own_gateway, "tech2", locale="en-CA")
    _, operator = await person(floor, "operator")
    ticket = await api(session, own_gateway, operator, "POST", "/api/machines/1/breakdown",
                       {"description": "Hydraulic pump seized"})  # fmt: skip
    since = datetime.fromisoformat(ticket["waiting_since"])

    for page, waiting in ((supervisor, "En attente depuis"), (technician, "Waiting")):
        wait = card_in(page, "received", ticket["id"]).locator(".card-wait")
        await expect(wait).to_contain_text(waiting, timeout=WAIT_MS)
        await expect(wait).to_have_attribute("data-escalated-to", "")

    assert await climb(floor[1], since + timedelta(minutes=10)) == 1  # the supervisors
    for page, words in ((supervisor, "escaladé aux superviseurs"),
                        (technician, "escalated to supervisors")):  # fmt: skip
        wait = card_in(page, "received", ticket["id"]).locator(".card-wait")
        await expect(wait).to_have_attribute("data-escalated-to", "supervisors", timeout=WAIT_MS)
        await expect(wait).to_contain_text(words)
    await supervisor.screenshot(path=str(ARTIFACTS / "escalation-board.png"))

    await card_in(supervisor, "received", ticket["id"]).locator(".card-title").click()
    timeline = supervisor.locator("#ticket-dialog [data-timeline]")
    await expect(timeline.locator('[data-what="escalated"]')).to_contain_text(
        "Escaladé aux superviseurs après 10", timeout=WAIT_MS
    )
    await expect(timeline.locator('[data-what="waiting"]')).to_contain_text("Panne")
    await supervisor.screenshot(path=str(ARTIFACTS / "escalation-timeline.png"))
    await supervisor.keyboard.press("Escape")

    _, tech_token = await person(floor, "tech2")
    await api(session, own_gateway, tech_token, "PUT", f"/api/tickets/{ticket['id']}",
              {"status": "in_progress"})  # fmt: skip
    await expect(
        card_in(technician, "in_progress", ticket["id"]).locator(".card-wait")
    ).to_have_count(0, timeout=WAIT_MS)  # answered: every board stops the clock
    await _the_statistics_page_draws_it(contexts, own_gateway)


async def _the_statistics_page_draws_it(contexts: Contexts, gateway: GatewayProcess) -> None:
    admin = await signed_in(contexts, gateway, "admin", locale="en-CA",
                            viewport={"width": 1280, "height": 2000})  # fmt: skip
    await admin.locator('[data-nav="statistics"]').click()
    funnel = admin.locator('[data-chart="funnel"]')
    await expect(funnel.locator("svg .ct-series")).to_have_count(5, timeout=WAIT_MS)  # created…read
    await expect(funnel.locator("tbody tr").filter(has_text="Breakdown")).to_have_count(1)
    assert max(await bar_values(funnel)) >= 1  # drawn from what the floor did
    frame = admin.locator('[data-chart="latency-frame"]')
    await expect(frame.locator("svg .ct-bar")).to_have_count(11)  # one per bucket
    await expect(frame.locator("figcaption")).to_contain_text("Write → open app")
    answers = admin.locator('[data-chart="answers"]')
    await expect(answers.locator("svg .ct-line")).to_have_count(2)  # median, p90
    await expect(answers.locator("tbody tr")).to_have_count(30)
    escalations = admin.locator('[data-chart="escalations"]')
    assert sum(await bar_values(escalations)) == 1  # the supervisors, today
    await escalations.locator("summary").click()  # the numbers, one tap away
    await expect(escalations.locator("tbody tr").last).to_contain_text("1")
    await admin.screenshot(path=str(ARTIFACTS / "statistics.png"), full_page=True)

    async with admin.expect_download() as download:
        await admin.locator("#statistics-csv").click()
    saved = await (await download.value).path()
    csv = await asyncio.to_thread(Path(saved).read_text, "utf-8")
    assert csv.startswith("Delivery funnel per type\n")  # read with universal newlines
    assert "machine_breakdown," in csv and "ticket_escalated," in csv
    day_rows = [line for line in csv.splitlines() if line[:4].isdigit()]
    assert len(day_rows) == 60  # the last 30 days, in both day tables
