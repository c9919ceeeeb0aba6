"""The console's languages: Simplified Chinese by default and English, from the person's choice (a cookie) or else
the browser's Accept-Language. Every string shown goes through the message catalogs in locales/ (gettext .po files,
compiled in memory at start-up: no build step); dates and numbers are formatted for the language by Babel."""

from __future__ import annotations

import functools
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from starlette.requests import Request

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES = ("zh_CN", "en")  # the first is the default
LANGUAGE_COOKIE = "datashare_lang"
TIME_ZONE = "Asia/Shanghai"  # the district's time: what people read dates in


def language_of(request: Request) -> str:
    """The person's choice if they made one, else the first language of their browser's we have, else Chinese."""
    chosen = request.cookies.get(LANGUAGE_COOKIE) or request.cookies.get(f"__Host-{LANGUAGE_COOKIE}")
    if chosen in LANGUAGES:
        return chosen
    for tag in _accepted(request.headers.get("accept-language", "")):
        for language in LANGUAGES:
            if tag == language.lower().replace("_", "-") or tag.split("-")[0] == language.split("_")[0]:
                return language
    return LANGUAGES[0]


def _accepted(header: str) -> list[str]:
    """The header's language tags, most preferred first (``q=0`` left out)."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip().lower()))
    return [tag for _, _, tag in sorted(weighted)]


def marked(message: str) -> str:
    """Marks a message for the catalogs (imported as ``_``: Babel extracts its calls); translated when shown."""
    return message


@functools.cache
def translations(language: str) -> Translations:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def gettext(language: str, message: str, **values: Any) -> str:
    text = translations(language).ugettext(message)
    return text % values if values else text


def when(language: str, moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return format_datetime(moment, "medium", tzinfo=_zone(), locale=_locale(language))


def day(language: str, value: date) -> str:
    return format_date(value, "medium", locale=_locale(language))


def number(language: str, value: float | int) -> str:
    return format_decimal(value, locale=_locale(language))


@functools.cache
def _locale(language: str) -> Locale:
    return Locale.parse(language)  # parsed once: a page of 250 dates parsed it 250 times


@functools.cache
def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIME_ZONE)
