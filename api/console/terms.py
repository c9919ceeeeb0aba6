"""The platform's terms in the page's language: data types, semantic types, quality rules and run outcomes, as the
catalog records them (English identifiers) and people read them. A value not listed is shown as recorded."""

from __future__ import annotations

from api.console import i18n
from api.console.i18n import marked as _

DATA_TYPES = {
    "string": _("text"), "integer": _("integer"), "decimal": _("decimal"), "date": _("date"),
    "datetime": _("date and time"), "boolean": _("yes or no"),
}  # fmt: skip
SEMANTIC_TYPES = {
    "none": _("none"), "identifier": _("identifier"), "resident_id": _("resident ID number"),
    "uscc": _("unified social credit code"), "phone": _("phone number"), "person_name": _("person's name"),
    "organization_name": _("organization's name"), "address": _("address"), "email": _("e-mail address"),
    "bank_card": _("bank card number"), "vehicle_plate": _("vehicle plate"), "code_list": _("code list"),
    "free_text": _("free text"),
}  # fmt: skip
RULES = {
    "row count": _("row count"), "unique key": _("unique key"), "not null": _("not empty"),
    "code list": _("in the code list"), "range": _("within the range"), "pattern": _("matches the pattern"),
    "resident ID check digit": _("resident ID check digit"), "USCC check character": _("USCC check character"),
    "phone format": _("phone number format"), "e-mail format": _("e-mail address format"),
}  # fmt: skip
OUTCOMES = {
    "published": _("published"), "quarantined": _("quarantined"), "released": _("released"),
    "discarded": _("discarded"), "failed": _("failed"), "interrupted": _("interrupted"), "running": _("running"),
}  # fmt: skip


def data_type(language: str, value: str) -> str:
    return _said(language, DATA_TYPES, value)


def semantic_type(language: str, value: str) -> str:
    return _said(language, SEMANTIC_TYPES, value)


def outcome(language: str, value: str) -> str:
    return _said(language, OUTCOMES, value)


def rule(language: str, recorded: str) -> str:
    """A quality check's rule (``type date``: a field's declared type) in the language."""
    if recorded.startswith("type ") and recorded[5:] in DATA_TYPES:
        return i18n.gettext(language, _("type: %(type)s"), type=data_type(language, recorded[5:]))
    return _said(language, RULES, recorded)


def _said(language: str, terms: dict[str, str], value: str) -> str:
    return i18n.gettext(language, terms[value]) if value in terms else value
