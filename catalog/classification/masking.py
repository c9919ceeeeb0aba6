"""Masking of values above a reader's approved level, one rule per masking kind, column by column.

Masked values keep a recognisable shape where that helps a reader (4403**********1234, 138****1234, 陈*)
without revealing the value. Rules work on whole Arrow columns (a million-row download is masked in a few
vectorised passes); ``mask`` applies the same code to one value, so every format shows the same masked text.
The ``hash`` rule is a keyed pseudonym (HMAC-SHA-256): stable, joinable, and not reversible by trying every
phone number without the platform's key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import ColumnElement, LargeBinary, case, func, literal, null

from catalog.classification.types import MaskingRule

PSEUDONYM_CHARS = 16  # hex characters of the HMAC kept: 64 bits, collisions negligible per field


def pseudonym_key(secret: str) -> bytes:
    """The hash rule's key, derived from the platform secret (so no second secret to manage)."""
    return hmac.new(secret.encode(), b"datashare pseudonyms", hashlib.sha256).digest()


def _stars(count: pa.Array) -> pa.Array:
    return pc.binary_repeat("*", count)


def _keep_ends(values: pa.Array, head: int, tail: int) -> pa.Array:
    length = pc.utf8_length(values)
    hidden = pc.max_element_wise(pc.subtract(length, head + tail), 0)
    tail_text = pc.utf8_slice_codeunits(values, -tail) if tail else ""
    shaped = pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, head), _stars(hidden), tail_text, "")
    return pc.if_else(pc.less_equal(length, head + tail), _stars(length), shaped)


def _address(values: pa.Array) -> pa.Array:
    length = pc.utf8_length(values)
    kept = pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, 6), "***", "")
    return pc.if_else(pc.greater(length, 6), kept, _stars(length))


def _email(values: pa.Array) -> pa.Array:
    """The first character of the local part and the whole domain: a***@example.gov.cn."""
    has_at = pc.match_substring(values, "@")
    shaped = pc.replace_substring_regex(values, pattern=r"^([^@]?)[^@]*@", replacement=r"\1***@", max_replacements=1)
    return pc.if_else(has_at, shaped, _keep_ends(values, 1, 0))


def _redact(values: pa.Array) -> pa.Array:
    return _stars(pc.utf8_length(values))


def _dropped(values: pa.Array) -> pa.Array:
    return pa.nulls(len(values), pa.string())


MaskColumn = Callable[[pa.Array], pa.Array]
MASKERS: dict[MaskingRule, MaskColumn] = {
    MaskingRule.NONE: lambda values: values,
    MaskingRule.ID_NUMBER: lambda values: _keep_ends(values, 4, 4),
    MaskingRule.PHONE: lambda values: _keep_ends(values, 3, 4),
    MaskingRule.NAME: lambda values: _keep_ends(values, 1, 0),
    MaskingRule.ADDRESS: _address,
    MaskingRule.EMAIL: _email,
    MaskingRule.REDACT: _redact,
    MaskingRule.DROP: _dropped,
}


def mask_column(rule: MaskingRule, values: pa.Array, key: bytes) -> pa.Array:
    """A text column as a reader without approval for its level sees it (nulls stay null)."""
    values = values.cast(pa.string())
    if rule is MaskingRule.HASH:
        pseudonyms = [None if value is None else _pseudonym(value, key) for value in values.to_pylist()]
        return pa.array(pseudonyms, pa.string())
    return MASKERS[rule](values)


def mask(rule: MaskingRule, value: str | None, key: bytes) -> str | None:
    """One value masked as ``mask_column`` masks it (None where the rule drops it)."""
    if value is None:
        return None
    masked: str | None = mask_column(rule, pa.array([value], pa.string()), key)[0].as_py()
    return masked


def _pseudonym(value: str, key: bytes) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def mask_sql(rule: MaskingRule, value: ColumnElement[str], key: bytes) -> ColumnElement[str]:
    """The same rule as a PostgreSQL expression over a text column, so that the database masks a download as it
    streams it out (``mask_column`` stays the reference; a test holds the two to the same text)."""
    length = func.char_length(value)

    def stars(count: ColumnElement[int]) -> ColumnElement[str]:
        return func.repeat("*", count)

    def keep_ends(head: int, tail: int) -> ColumnElement[str]:
        shaped = func.overlay(value, stars(length - head - tail), head + 1)  # the middle replaced by stars
        return case((length <= head + tail, stars(length)), else_=shaped)

    at = func.strpos(value, "@")
    expressions: dict[MaskingRule, Callable[[], ColumnElement[Any]]] = {
        MaskingRule.NONE: lambda: value,
        MaskingRule.ID_NUMBER: lambda: keep_ends(4, 4),
        MaskingRule.PHONE: lambda: keep_ends(3, 4),
        MaskingRule.NAME: lambda: keep_ends(1, 0),
        MaskingRule.ADDRESS: lambda: case((length > 6, func.left(value, 6).concat("***")), else_=stars(length)),
        MaskingRule.EMAIL: lambda: case(
            (at > 0, func.left(func.split_part(value, "@", 1), 1).concat("***@").concat(func.substr(value, at + 1))),
            else_=keep_ends(1, 0),
        ),
        MaskingRule.REDACT: lambda: stars(length),
        MaskingRule.HASH: lambda: _pseudonym_sql(value, key),
        MaskingRule.DROP: lambda: null(),
    }
    return expressions[rule]()


def _pseudonym_sql(value: ColumnElement[str], key: bytes) -> ColumnElement[str]:
    """HMAC-SHA-256 (RFC 2104) from PostgreSQL's built-in sha256, which needs no extension."""
    block = key.ljust(64, b"\0")  # keys are 32 bytes: shorter than SHA-256's 64-byte block
    inner_key = bytes(byte ^ 0x36 for byte in block)
    outer_key = bytes(byte ^ 0x5C for byte in block)
    inner = func.sha256(literal(inner_key, LargeBinary).op("||")(func.convert_to(value, "UTF8")))
    outer = func.sha256(literal(outer_key, LargeBinary).op("||")(inner))
    return func.substr(func.encode(outer, "hex"), 1, PSEUDONYM_CHARS)
