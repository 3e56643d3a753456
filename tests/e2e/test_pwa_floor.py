"""The PWA for the people on the floor, in real Chromium: French and English (switching at
once, nothing reloaded), dates in the person's language and time zone, no serious or
critical accessibility violation (axe-core) on any screen in either language, every
control reachable by keyboard, touch targets of at least 44 px on a phone, the phone
board one column at a time, and critical notifications that look and sound critical.

Screenshots of every screen, in both languages, at desktop and phone widths, are saved
under tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.e2e.browser import FLOOR, WAIT_MS, Contexts, card_in, new_ticket, signed_in
from tests.gateway_process import GatewayProcess
from tests.helpers import api

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
AXE = ROOT / "tests" / "tools" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ENGLISH = {"locale": "en-CA", "timezone_id": "America/Vancouver"}
SCREENS = ("board", "ticket", "messages", "notifications", "settings")
# Counts the oscillators the page starts: the alert sound, heard by the test.
COUNT_SOUNDS = """() => {
window.__sounds = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__sounds += 1;
  return start.apply(this, args);
};
}"""


def words(language: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "web" / "i18n" / f"{language}.json").read_text()))


async def as_language(
    session: aiohttp.ClientSession, gateway: GatewayProcess, token: str, language: str
) -> None:
    await api(session, gateway, token, "PATCH", "/api/auth/me", {"language": language})


async def show(page: Page, screen: str, ticket_id: int) -> None:
    """Open one screen of the app as a person would."""
    if await page.locator("#ticket-dialog[open]").count():
        await page.locator("#ticket-dialog .close").click()
    if screen == "ticket":
        await page.locator('[data-nav="board"]').click()
        await page.locator(f'[data-ticket-id="{ticket_id}"] .card-title').click()
        await expect(page.locator("#ticket-dialog .comments")).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#ticket-status")).to_be_enabled(timeout=WAIT_MS)
        return
    await page.locator(f'[data-nav="{screen}"]').click()
    await expect(page.locator(f'[data-view="{screen}"]')).to_be_visible(timeout=WAIT_MS)
    if screen == "messages":
        await page.locator('#conversation-list [data-contact-id="public"]').click()
        await expect(page.locator("#composer")).to_be_visible(timeout=WAIT_MS)
    await page.wait_for_timeout(300)  # lists loading after the switch


async def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(content=AXE.read_text())
    found = await page.evaluate(
        "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations"
        ".filter((v) => v.impact === 'serious' || v.impact === 'critical')"
        ".map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)"
    )
    return list(found)


async def small_targets(page: Page) -> list[str]:
    """Visible controls a thumb hits that are under 44 px either way (a checkbox counts by
    its label, which is what the thumb touches)."""
    found = await page.evaluate(
        """() => {
          const controls = document.querySelectorAll('button, a[href], select, label.check,'
            + ' input:not([type=checkbox]):not([type=file]), [role=switch]');
          const small = [];
          for (const el of controls) {
            if (el.closest('[hidden]') || el.classList.contains('sr-only')) continue;
            const box = el.getBoundingClientRect();
            if (box.width === 0 || box.height === 0) continue;
            const style = getComputedStyle(el);
            if (style.visibility === 'hidden' || style.display === 'none') continue;
            if (box.height < 44 || box.width < 44) {
              const text = (el.textContent || '').trim().slice(0, 30);
              small.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className} `
                + `${Math.round(box.width)}x${Math.round(box.height)} "${text}"`);
            }
          }
          return small;
        }"""
    )
    return list(found)


async def make_scene(
    session: aiohttp.ClientSession, gateway: GatewayProcess, tokens: dict[str, str]
) -> dict[str, Any]:
    """A critical ticket, comments and a message: every screen has something to show (in
    the language the supervisor reads when they are written)."""
    ticket = await new_ticket(session, gateway, tokens, "Presse hydraulique : fuite d\u2019huile")
    path = f"/api/tickets/{ticket['id']}"
    await api(session, gateway, tokens["supervisor"], "PUT", path, {"priority": "critical"})
    await api(session, gateway, tokens["supervisor"], "POST", f"{path}/comments",
              {"body": "Joint à remplacer"})  # fmt: skip
    # The supervisor reported it: a technician's comment and message reach their inbox.
    await api(session, gateway, tokens["tech1"], "POST", f"{path}/comments",
              {"body": "Pièce commandée, arrivée demain"})  # fmt: skip
    notice = {"message_type": "public", "content": "Presse 4 arrêtée jusqu\u2019à 14 h"}
    await api(session, gateway, tokens["tech1"], "POST", "/api/messages", notice)
    return ticket


@pytest.mark.parametrize("language", ["fr", "en"])
async def test_every_screen_in_both_languages_is_accessible_and_photographed(
    contexts: Contexts, gateway: GatewayProcess, session: aiohttp.ClientSession,
    tokens: dict[str, str], language: str,
) -> None:  # fmt: skip
    browser = FLOOR if language == "fr" else ENGLISH
    ARTIFACTS.mkdir(exist_ok=True)
    await as_language(session, gateway, tokens["supervisor"], language)
    failures: dict[str, list[str]] = {}
    try:
        scene = await make_scene(session, gateway, tokens)
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            login = await (await contexts.open(viewport=viewport, **browser)).new_page()
            await login.goto(gateway.url + "/")
            await expect(login.locator("#login-form button[type=submit]")).to_have_text(
                words(language)["login.submit"], timeout=WAIT_MS
            )
            await login.screenshot(path=str(ARTIFACTS / f"login-{language}-{width}.png"))
            failures[f"login {width}"] = await serious_violations(login)

            page = await signed_in(contexts, gateway, "supervisor", viewport, **browser)
            await expect(page.locator("html")).to_have_attribute("lang", browser["locale"])
            for screen in SCREENS:
                await show(page, screen, scene["id"])
                await page.evaluate("window.scrollTo(0, 0)")
                shot = ARTIFACTS / f"{screen}-{language}-{width}.png"
                await page.screenshot(path=str(shot), full_page=screen != "ticket")
                assert shot.stat().st_size > 10_000
                failures[f"{screen} {width}"] = await serious_violations(page)
                if width == "phone":
                    failures[f"{screen} {width} targets"] = await small_targets(page)
    finally:
        await as_language(session, gateway, tokens["supervisor"], "fr")
    bad = [f"{where}: {finding}" for where, found in failures.items() for finding in found]
    assert bad == [], "\n".join(bad)


async def test_the_language_switches_at_once_and_nothing_is_lost(
    contexts: Contexts, gateway: GatewayProcess, session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:  # fmt: skip
    scene = await make_scene(session, gateway, tokens)
    page = await signed_in(contexts, gateway, "tech1")
    await page.evaluate("window.__sameDocument = true")
    await expect(page.locator('[data-nav="board"]')).to_have_text("Tableau")
    await page.locator('[data-nav="settings"]').click()
    half_done = page.locator('input[name="push:comment_added"]')
    await expect(half_done).to_be_checked(timeout=WAIT_MS)
    await half_done.uncheck()  # not saved yet
    try:
        await page.locator("#language-select").select_option("en")
        await expect(page.locator('[data-nav="board"]')).to_have_text("Board", timeout=WAIT_MS)
        await expect(page.locator("#prefs-title")).to_have_text("What to notify me about")
        await expect(half_done).not_to_be_checked()  # the unsaved change survived
        await expect(page.locator("html")).to_have_attribute("lang", "en-CA")
        assert await page.evaluate("window.__sameDocument") is True  # no reload
        me = await api(session, gateway, tokens["tech1"], "GET", "/api/auth/me")
        assert me["language"] == "en"

        await page.locator('[data-nav="board"]').click()
        card = page.locator(f'[data-ticket-id="{scene["id"]}"]')
        await expect(card.locator(".move-select option").first).to_have_text("Move to…")
        await expect(card).to_contain_text("Critical")
        await expect(page.locator('[data-status="received"] h2')).to_have_text("Received")
    finally:
        await as_language(session, gateway, tokens["tech1"], "fr")


@pytest.mark.parametrize(
    ("place", "overdue_words"),
    [(FLOOR, "En retard depuis le {date}"), (ENGLISH, "Overdue since {date}")],
)
async def test_dates_are_written_in_the_persons_language_and_time_zone(
    contexts: Contexts, gateway: GatewayProcess, session: aiohttp.ClientSession,
    tokens: dict[str, str], place: dict[str, str], overdue_words: str,
) -> None:  # fmt: skip
    language = place["locale"][:2]
    await as_language(session, gateway, tokens["tech2"], language)
    # 03:30 UTC is still the evening before in Toronto and Vancouver: the card must name
    # the day of the person's own zone.
    due = (datetime.now(UTC) - timedelta(days=2)).replace(hour=3, minute=30, microsecond=0)
    body = {"title": "Courroie usée", "machine_id": 1, "priority": "high",
            "scheduled_date": due.isoformat()}  # fmt: skip
    ticket = await api(session, gateway, tokens["supervisor"], "POST", "/api/tickets", body)
    try:
        page = await signed_in(contexts, gateway, "tech2", **place)
        expected_day = await page.evaluate(
            "([iso, locale, zone]) => new Intl.DateTimeFormat(locale,"
            " { dateStyle: 'medium', timeZone: zone }).format(new Date(iso))",
            [due.isoformat(), place["locale"], place["timezone_id"]],
        )
        card = card_in(page, "received", ticket["id"])
        await expect(card.locator(".card-due")).to_have_text(
            overdue_words.format(date=expected_day), timeout=WAIT_MS
        )
        await card.locator(".card-title").click()
        expected_when = await page.evaluate(
            "([iso, locale, zone]) => new Intl.DateTimeFormat(locale, { dateStyle: 'medium',"
            " timeStyle: 'short', timeZone: zone }).format(new Date(iso))",
            [due.isoformat(), place["locale"], place["timezone_id"]],
        )
        await expect(page.locator("#ticket-dialog .facts")).to_contain_text(expected_when)
    finally:
        await as_language(session, gateway, tokens["tech2"], "fr")


async def test_the_board_is_operable_by_keyboard_alone(
    contexts: Contexts, gateway: GatewayProcess, session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:  # fmt: skip
    ticket = await new_ticket(session, gateway, tokens, "Capteur à recalibrer")
    page = await signed_in(contexts, gateway, "supervisor")
    card = page.locator(f'[data-ticket-id="{ticket["id"]}"]')
    await expect(card).to_be_visible(timeout=WAIT_MS)
    reached: set[str] = set()
    for _ in range(400):  # Tab through the page until the card's controls come up
        await page.keyboard.press("Tab")
        reached.add(await page.evaluate(
            "() => { const el = document.activeElement;"
            " const card = el.closest('[data-ticket-id]');"
            " return (card ? card.dataset.ticketId : '') + ':' + el.className; }"
        ))  # fmt: skip
        if f"{ticket['id']}:move-select" in reached:
            break
    assert f"{ticket['id']}:card-title" in reached and f"{ticket['id']}:move-select" in reached
    for control in ("board-search", "board-mine", "new-ticket-button", "logout-button"):
        assert await page.evaluate(f"document.getElementById('{control}').tabIndex >= 0")

    # Move it with the keyboard: the focused "Move to…" list, arrow down, Enter.
    await page.keyboard.press("ArrowDown")  # the first other column: Diagnostic
    await page.keyboard.press("Enter")
    await expect(card_in(page, "diagnostic", ticket["id"])).to_have_count(1, timeout=WAIT_MS)

    # Open it with Enter, close it with Escape.
    await card_in(page, "diagnostic", ticket["id"]).locator(".card-title").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#ticket-dialog")).to_have_attribute("open", "", timeout=WAIT_MS)
    await page.keyboard.press("Escape")
    await expect(page.locator("#ticket-dialog")).not_to_have_attribute("open", "")


async def test_the_phone_board_shows_one_column_and_switches_with_counts(
    contexts: Contexts, gateway: GatewayProcess, session: aiohttp.ClientSession,
    tokens: dict[str, str],
) -> None:  # fmt: skip
    ticket = await new_ticket(session, gateway, tokens, "Ventilateur bruyant")
    page = await signed_in(contexts, gateway, "supervisor", PHONE)
    visible = page.locator("#board > [data-status]:visible")
    await expect(visible).to_have_count(1, timeout=WAIT_MS)
    await expect(visible).to_have_attribute("data-status", "received")
    tabs = page.locator("#column-switcher .column-tab")
    await expect(tabs).to_have_count(6)
    for status in ("received", "diagnostic"):
        tab = page.locator(f'#column-switcher [data-column="{status}"]')
        shown = await page.locator(f'[data-status="{status}"] [data-ticket-id]').count()
        await expect(tab.locator(".column-tab-count")).to_have_text(str(shown))
    diagnostic = page.locator('#column-switcher [data-column="diagnostic"]')
    before = int(await diagnostic.locator(".column-tab-count").inner_text())

    # "Move to…" one tap away on the card; the counts follow.
    card = card_in(page, "received", ticket["id"])
    await card.locator(".move-select").select_option("diagnostic")
    await expect(diagnostic.locator(".column-tab-count")).to_have_text(
        str(before + 1), timeout=WAIT_MS
    )
    await expect(diagnostic).to_have_accessible_name(re.compile(r"^Diagnostic \d+ tickets?$"))
    await diagnostic.click()
    await expect(visible).to_have_attribute("data-status", "diagnostic")
    await expect(card_in(page, "diagnostic", ticket["id"])).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1


@pytest.mark.parametrize("sound", [True, False])
async def test_a_critical_notification_stands_out_and_sounds_unless_sounds_are_off(
    contexts: Contexts, gateway: GatewayProcess, session: aiohttp.ClientSession,
    tokens: dict[str, str], users: dict[str, int], sound: bool,
) -> None:  # fmt: skip
    page = await signed_in(contexts, gateway, "tech1")
    await page.evaluate(COUNT_SOUNDS)
    if not sound:
        await page.locator('[data-nav="settings"]').click()
        await page.locator("#sound-switch").uncheck()
        await page.locator('[data-nav="board"]').click()
    ticket = await new_ticket(session, gateway, tokens, "Arrêt d\u2019urgence déclenché")
    path = f"/api/tickets/{ticket['id']}"
    await api(session, gateway, tokens["supervisor"], "PUT", path, {"priority": "critical"})
    await api(session, gateway, tokens["supervisor"], "POST", f"{path}/assign",
              {"assigned_to": users["tech1"]})  # fmt: skip

    toast = page.locator("#toasts .toast-critical", has_text="Nouveau ticket assigné")
    await expect(toast).to_be_visible(timeout=WAIT_MS)
    await expect(toast).to_have_attribute("role", "alert")
    await expect(toast.locator(".toast-flag")).to_have_text("Critique")
    card = card_in(page, "received", ticket["id"])
    await expect(card).to_have_class(re.compile(r"\bprio-critical\b"))
    await expect(card.locator(".chip.prio")).to_have_text("⚠ Critique")
    border = await card.evaluate("(el) => parseFloat(getComputedStyle(el).borderLeftWidth)")
    assert border >= 8
    await page.wait_for_timeout(500)
    assert (await page.evaluate("window.__sounds") > 0) is sound
    await page.wait_for_timeout(8500)  # longer than an ordinary toast stays
    await expect(toast).to_be_visible()
