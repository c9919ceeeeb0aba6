"""Vocabularies shared by declarations, validation and (later) masking."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

REPORTS = ("levels", "unreviewed", "proposals", "decisions")  # the classification reports (reports.py)


class DataType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"

    @property
    def ordered(self) -> bool:
        """Whether its values have a range (a scope's from and to)."""
        return self in (DataType.INTEGER, DataType.DECIMAL, DataType.DATE, DataType.DATETIME)

    def parse(self, text: str) -> Any:
        """A value of this type from its text, as stored (ValueError if the text is not one)."""
        try:
            return _PARSERS.get(self, str)(text)
        except InvalidOperation:
            raise ValueError(text) from None


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "是"), ("false", "0", "no", "否")


def _decimal(text: str) -> Decimal:
    number = Decimal(text)
    if not number.is_finite():  # NaN and infinities: no stored value is one (and sNaN cannot be hashed)
        raise ValueError(text)
    return number


def _boolean(text: str) -> bool:
    if text.lower() not in TRUE_WORDS + FALSE_WORDS:
        raise ValueError(text)
    return text.lower() in TRUE_WORDS


_PARSERS: dict[DataType, Callable[[str], Any]] = {
    DataType.INTEGER: int,
    DataType.DECIMAL: _decimal,
    DataType.DATE: date.fromisoformat,
    DataType.DATETIME: datetime.fromisoformat,
    DataType.BOOLEAN: _boolean,
}


class SemanticType(StrEnum):
    NONE = "none"
    IDENTIFIER = "identifier"
    RESIDENT_ID = "resident_id"
    USCC = "uscc"
    PHONE = "phone"
    PERSON_NAME = "person_name"
    ORGANIZATION_NAME = "organization_name"
    ADDRESS = "address"
    EMAIL = "email"
    BANK_CARD = "bank_card"
    VEHICLE_PLATE = "vehicle_plate"
    CODE_LIST = "code_list"
    FREE_TEXT = "free_text"


class MaskingRule(StrEnum):
    NONE = "none"
    ID_NUMBER = "id_number"  # 4403**********1234: keeps the shape of an identity number
    PHONE = "phone"  # 138****1234
    NAME = "name"  # 陈*
    ADDRESS = "address"  # keeps the district, hides the rest
    EMAIL = "email"  # a***@example.gov.cn
    HASH = "hash"  # a stable pseudonym, joinable but not readable
    REDACT = "redact"  # every character hidden
    DROP = "drop"  # the field is left out


DEFAULT_MASKING: dict[SemanticType, MaskingRule] = {
    SemanticType.RESIDENT_ID: MaskingRule.ID_NUMBER,
    SemanticType.BANK_CARD: MaskingRule.ID_NUMBER,
    SemanticType.PHONE: MaskingRule.PHONE,
    SemanticType.PERSON_NAME: MaskingRule.NAME,
    SemanticType.ADDRESS: MaskingRule.ADDRESS,
    SemanticType.EMAIL: MaskingRule.EMAIL,
    SemanticType.VEHICLE_PLATE: MaskingRule.REDACT,
    SemanticType.FREE_TEXT: MaskingRule.REDACT,
}


def default_masking(semantic_type: SemanticType) -> MaskingRule:
    return DEFAULT_MASKING.get(semantic_type, MaskingRule.REDACT)
