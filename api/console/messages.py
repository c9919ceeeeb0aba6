"""The console's strings as the code and templates use them (extracted with Babel), for the message catalogs'
completeness test and for `python -m api.console.messages`, which lists the strings a catalog lacks."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api.console.i18n import LANGUAGES, LOCALES_DIR

CONSOLE = Path(__file__).parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "t": None}


def used() -> set[str]:
    """Every message id the console's templates and pages use."""
    found = extract_from_dir(
        CONSOLE, METHODS, keywords=KEYWORDS, options_map={"templates/**.html": {"trimmed": "false"}}
    )
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def missing(language: str) -> set[str]:
    """The used messages the language's catalog lacks or leaves untranslated."""
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    translated = {message.id for message in catalog if message.id and message.string}
    return used() - translated


if __name__ == "__main__":
    gaps = {language: sorted(missing(language)) for language in LANGUAGES}
    for language, messages in gaps.items():
        for message in messages:
            print(f"{language}: {message}")
    sys.exit(1 if any(gaps.values()) else 0)
