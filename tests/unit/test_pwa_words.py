"""The PWA holds no words of its own: its markup and scripts name catalogue entries, and
every entry they name exists (in every language: tests/unit/test_texts.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from domain.kinds import KINDS
from domain.model import Language
from gateway.texts import catalogue

WEB = Path(__file__).resolve().parents[2] / "web"
# Namespaces of the catalogue the PWA uses by name (kinds, statuses, priorities and roles
# are looked up by value: tests/unit/test_texts.py checks those).
NAMESPACES = (
    "app|login|nav|session|board|report|presence|messages|notifications|settings|"
    "device_push|prefs|admin|common|live|ticket|error|badge|people|language|machine|offline"
)
KEY = re.compile(rf"""['"`]((?:{NAMESPACES})\.[a-z0-9_.]+)['"`]""")
LITERAL = re.compile(r"""(['"`])((?:(?!\1)[^\\\n]|\\.)*)\1""")
PROSE = re.compile(r"[A-Za-zÀ-ÿ]{2,} +[A-Za-zÀ-ÿ]{2,}|^[A-Z][a-z]+[.…!?]?$")
CLASS_LIKE = re.compile(r"[a-z0-9 _\-:.#\[\]=>*(),'\"${}?|&!]+")  # class lists, selectors
# Names no language translates, and text for programs (an error's developer message).
NOT_WORDS = {
    "Enter", "Notification", "Edge", "Firefox", "Chrome", "Safari", "Android", "Windows",
    "Linux", "The server could not be reached.",
}  # fmt: skip
# The service worker's page for a browser that never cached the app (nor its catalogues):
# a word in each language, then the markup around the catalogue's sentence.
WORKER_FALLBACK = {"Hors ligne · Offline"}
TEXT_ATTRIBUTES = ("aria-label", "placeholder", "title", "alt")


def scripts() -> list[Path]:
    return sorted(WEB.glob("*.js"))


def test_scripts_hold_no_sentences() -> None:
    found = []
    for path in scripts():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split(" // ")[0]
            if code.strip().startswith(("//", "*", "/*")):
                continue
            for match in LITERAL.finditer(code):
                text = re.sub(r"\$\{[^}]*\}", "", match[2])  # a template's code is no words
                if text in NOT_WORDS or text in WORKER_FALLBACK or text.startswith("<!doctype"):
                    continue
                if PROSE.search(text) and not CLASS_LIKE.fullmatch(text):
                    found.append(f"{path.name}:{number}: {text!r}")
    assert found == []


class _Markup(HTMLParser):
    """Text and text attributes of index.html that do not come from the catalogue."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open element: is its text from the catalogue
        self.own_words: list[str] = []
        self.keys: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("data-i18n"):
            self.keys.add(str(named["data-i18n"]))
        from_catalogue = {
            pair.split(":")[0].strip() for pair in (named.get("data-i18n-attr") or "").split(";")
        }
        for pair in (named.get("data-i18n-attr") or "").split(";"):
            if ":" in pair:
                self.keys.add(pair.split(":")[1].strip())
        for attribute in TEXT_ATTRIBUTES:
            if named.get(attribute) and attribute not in from_catalogue:
                self.own_words.append(f"<{tag} {attribute}={named[attribute]!r}>")
        if tag not in ("meta", "link", "img", "input", "br"):
            inherited = bool(self.stack and self.stack[-1])
            self.stack.append(inherited or "data-i18n" in named)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("meta", "link", "img", "input", "br") and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        text = data.strip()
        brand_or_sign = text in ("", "Floorbell", "\u00d7", "\u2190", "0", ".")
        if not brand_or_sign and not (self.stack and self.stack[-1]):
            self.own_words.append(text)


def _markup() -> _Markup:
    parser = _Markup()
    parser.feed((WEB / "index.html").read_text())
    return parser


def test_the_markup_takes_every_word_from_the_catalogue() -> None:
    assert _markup().own_words == []


def test_every_entry_the_pwa_names_exists() -> None:
    named = _markup().keys
    for path in scripts():
        named |= set(KEY.findall(path.read_text()))
    for language in Language:
        assert sorted(named - set(catalogue(language))) == [], language


def test_the_pwa_knows_every_kind_of_notification_in_order() -> None:
    """events.js lists the kinds (and who can receive them); it must not drift from
    domain/kinds.py."""
    source = (WEB / "events.js").read_text()
    block = source.split("export const NOTIFICATIONS = {", 1)[1].split("\n};", 1)[0]
    listed = re.findall(r"^\s+(\w+): \{", block, flags=re.MULTILINE)
    assert listed == [kind.name for kind in KINDS]
