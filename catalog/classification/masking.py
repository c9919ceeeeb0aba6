"""Masking of values above a reader's approved level, one function per masking rule.

Masked values keep a recognisable shape where that helps a reader (4403**********1234, 138****1234, 陈*)
without revealing the value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from catalog.classification.types import MaskingRule


def _keep_ends(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def _email(value: str) -> str:
    local, at, domain = value.partition("@")
    return (local[:1] + "***" + at + domain) if at else _keep_ends(value, 1, 0)


MASKERS: dict[MaskingRule, Callable[[str], str | None]] = {
    MaskingRule.NONE: lambda value: value,
    MaskingRule.ID_NUMBER: lambda value: _keep_ends(value, 4, 4),
    MaskingRule.PHONE: lambda value: _keep_ends(value, 3, 4),
    MaskingRule.NAME: lambda value: _keep_ends(value, 1, 0),
    MaskingRule.ADDRESS: lambda value: value[:6] + "***" if len(value) > 6 else "*" * len(value),
    MaskingRule.EMAIL: _email,
    MaskingRule.HASH: lambda value: hashlib.sha256(value.encode()).hexdigest()[:16],
    MaskingRule.REDACT: lambda value: "*" * len(value),
    MaskingRule.DROP: lambda value: None,
}


def mask(rule: MaskingRule, value: str | None) -> str | None:
    """The value as a reader without approval for its level sees it (None where the rule drops it)."""
    return None if value is None else MASKERS[rule](value)
