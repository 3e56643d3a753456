"""The words a person reads, in their language.

One JSON catalogue per language in `web/i18n/` — the same files the PWA loads — of
dotted keys. `{name}` marks a parameter; an entry that depends on a count holds its CLDR
plural forms (`{"one": …, "other": …}`). Babel supplies the plural rules and writes
numbers, dates and times as each language does (`meta.locale`: `fr-CA`, `en-CA`).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format, get_timezone_name
from babel.numbers import format_decimal

from domain.model import Language
from domain.notify import BODY_MAX, TITLE_MAX, Moment, Notice, Param, Term, shorten

log = logging.getLogger(__name__)
CATALOGUES = Path(__file__).resolve().parents[1] / "web" / "i18n"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
Entry = str | dict[str, str]


@cache
def catalogue(language: Language) -> dict[str, Entry]:
    """The catalogue of one language, read once."""
    entries: dict[str, Entry] = json.loads((CATALOGUES / f"{language}.json").read_text("utf-8"))
    return entries


@cache
def locale(language: Language) -> Locale:
    return Locale.parse(str(catalogue(language)["meta.locale"]), sep="-")


def text(language: Language, key: str, **params: Any) -> str:
    """The entry `key` in `language` with its parameters filled in (a `count` parameter
    picks the plural form). A key missing from the catalogue — a bug the catalogue tests
    exist to catch — is logged and shows as the key, so delivery never stops over it."""
    entry = catalogue(language).get(key)
    if entry is None:
        log.error("catalogue %s has no entry %r", language, key)
        return key
    if isinstance(entry, dict):
        form = locale(language).plural_form(params["count"])
        entry = entry.get(form, entry["other"])
    words = {name: _number(language, v) if isinstance(v, int) else v for name, v in params.items()}
    return fill(entry, words)


def fill(template: str, params: dict[str, Any]) -> str:
    """`{name}` replaced by its parameter; an unknown name is left as it is."""
    return PLACEHOLDER.sub(lambda m: str(params.get(m[1], m[0])), template)


def notice_texts(notice: Notice, language: Language, timezone: str) -> tuple[str, str]:
    """A notice's title and body in `language`, its instants in `timezone`, within the
    limits of the inbox and of a push."""
    params = {name: _word(language, value, timezone) for name, value in notice.params.items()}
    title = text(language, f"notice.{notice.text}.title", **params)
    body = text(language, f"notice.{notice.text}.body", **params)
    return shorten(title, TITLE_MAX), shorten(body, BODY_MAX)


def moment(language: Language, instant: datetime, timezone: str) -> str:
    """A date and time as the language writes them, in `timezone`, naming the zone:
    « 5 mars 2025, 14 h 30 HNE », "Mar 5, 2025, 2:30 p.m. EST"."""
    where = locale(language)
    if instant.tzinfo is None:  # stored instants are UTC
        instant = instant.replace(tzinfo=UTC)
    local = instant.astimezone(ZoneInfo(timezone))
    day = format_date(local, "medium", locale=where)
    zone = get_timezone_name(local, "short", locale=where)
    clock = f"{format_time(local, 'short', locale=where)} {zone}"
    return str(get_datetime_format("medium", locale=where)).format(clock, day)


def _word(language: Language, value: Param, timezone: str) -> str | int:
    if isinstance(value, Term):
        return text(language, f"{value.group}.{value.value}")
    if isinstance(value, Moment):
        try:
            return moment(language, datetime.fromisoformat(value.iso), timezone)
        except ValueError:  # not an instant after all: shown as it came
            return value.iso
    return value


def _number(language: Language, value: int) -> str:
    return format_decimal(value, locale=locale(language))
