"""Recognisers of Chinese personal and organisational identifiers, vectorised over whole columns.

Each ``*_valid`` function takes a column (pandas Series, numpy array or Arrow array of text; other types are
read as their text) and returns a boolean pandas Series aligned with it (the Series' own index, else 0..n-1);
null values are never valid. Shapes are matched by RE2 regular expressions in Arrow, check characters by
numpy arithmetic on the bytes of the values that have the shape. Nothing here imports Great Expectations:
the ingest expectations (``catalog.ingest.gx_checks``) and the sensitive-field detection
(``catalog.classification.detection``) share these functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from catalog.classification.surnames import COMPOUND_SURNAMES, SINGLE_SURNAMES

Column: TypeAlias = pd.Series | np.ndarray | pa.Array | pa.ChunkedArray
CheckFunction: TypeAlias = Callable[[np.ndarray], np.ndarray]  # a (rows, width) byte matrix -> valid rows

RESIDENT_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
RESIDENT_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)  # by weighted sum mod 11
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # values 0..30; no I O S V Z
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
USCC_VALUES = np.full(256, -1, dtype=np.int64)
USCC_VALUES[np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)
BANK_CARD_LENGTHS = (13, 19)
LUHN_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int64)  # digit doubled, digits of it summed

HAN = "\u4e00-\u9fff"  # CJK unified ideographs
RESIDENT_ID_PATTERN = r"^[0-9]{17}[0-9X]$"
USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
BANK_CARD_PATTERN = rf"^[1-9][0-9]{{{BANK_CARD_LENGTHS[0] - 1},{BANK_CARD_LENGTHS[1] - 1}}}$"
# Phones: mobiles 1[3-9] and 9 digits (13812345678, +86 138-1234-5678, 0086 138 1234 5678),
# and landlines: a trunk 0 and an area code (010, 02x, 0xxx), or +86 and the code without its 0, then a local
# number of 7 or 8 digits not starting with 0 or 1, and perhaps an extension (0755-28123456转8001).
MOBILE = r"(?:(?:\+|00)?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}"
AREA_CODE = r"(?:10|2[0-9]|[3-9][0-9]{2})"
LANDLINE = (
    rf"(?:0{AREA_CODE}[- ]?|[(（]0{AREA_CODE}[)）] ?|(?:\+|00)86[- ]?{AREA_CODE}[- ]?)"
    r"[2-9](?:[0-9]{6}|[0-9]{3}[- ]?[0-9]{4})(?:(?:-|转|分机)[0-9]{1,6})?"
)
PHONE_PATTERN = rf"^(?:{MOBILE}|{LANDLINE})$"
# The local part as mail systems here accept it (dots anywhere); the domain of labels that neither start nor end
# with a hyphen, and a top-level domain of letters.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$"
PERSON_NAME_PATTERN = rf"^[{HAN}]{{2,4}}$"

_SURNAME_SET = pa.array(sorted(SINGLE_SURNAMES))
_COMPOUND_SURNAME_SET = pa.array(sorted(COMPOUND_SURNAMES))
# Last characters that make a short text a place, an organisation or a thing rather than a given name.
NOT_NAME_ENDINGS = frozenset("省市区县镇乡村路街巷号楼栋室局厅处科院所站队部司厂店馆场校类型费款证照表单")
_NOT_NAME_ENDING_SET = pa.array(sorted(NOT_NAME_ENDINGS))

ADDRESS_LENGTH = (6, 100)
ADDRESS_CHARACTERS = rf"^[{HAN}][{HAN}0-9A-Za-z０-９#＃\-－—·()（）\s]*$"
# An administrative unit followed by a street-level marker: 深圳市坪山区…路12号, 马峦街道坪环社区…栋.
ADDRESS_MARKERS = (
    "(?:省|市|区|县|旗|镇|乡|街道|社区|村).*(?:路|街|巷|道|号|栋|幢|座|室|弄|组|村|社区|小区|花园|苑|大厦|公寓)"
)
# ... but not the name of an organisation there (马峦街道办事处, 坪环社区工作站, 坪山区人民医院).
NOT_ADDRESS_ENDINGS = "(?:公司|办事处|工作站|委员会|中心|医院|学校|局|所|院|会|厅|队|部|站)$"

PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_LETTER = "A-HJ-NP-Z"  # no I, no O
VEHICLE_PLATE_PATTERN = (
    rf"^[{PLATE_PROVINCES}][{_PLATE_LETTER}][-·•\s]?"
    rf"(?:[{_PLATE_LETTER}0-9]{{4}}[{_PLATE_LETTER}0-9挂学警港澳]"  # ordinary plates: 5 characters
    rf"|[DF][{_PLATE_LETTER}0-9][0-9]{{4}}|[0-9]{{5}}[DF])$"  # new-energy plates: 6
)


def as_text(values: Column) -> pa.Array:
    """The column as an Arrow text array, nulls kept null; values of other types as their text (whole numbers
    held as floats, as a column with gaps read by pandas holds them, without a decimal part)."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = _pandas_to_arrow(pd.Series(values, copy=False))  # a chunked array if Arrow holds the Series
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    if pa.types.is_floating(values.type) and _whole_numbers(values):
        values = values.cast(pa.int64())
    return values.cast(pa.string())


def _whole_numbers(values: pa.Array) -> bool:
    exact = pc.and_(pc.equal(pc.floor(values), values), pc.less_equal(pc.abs(values), 2**53))
    return pc.all(exact).as_py() is not False  # None for no values


def _pandas_to_arrow(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object column mixing text and numbers: read as text
        return pa.array([None if pd.isna(value) else str(value) for value in series], pa.string())


def _index(values: Column) -> pd.Index:
    return values.index if isinstance(values, pd.Series) else pd.RangeIndex(len(values))


def _as_series(valid: np.ndarray | pa.Array, values: Column) -> pd.Series:
    if isinstance(valid, pa.Array):
        valid = pc.fill_null(valid, False).to_numpy(zero_copy_only=False)
    return pd.Series(valid, index=_index(values), dtype=bool)


def matches(text: pa.Array, pattern: str) -> np.ndarray:
    """Which values match the anchored RE2 ``pattern`` (nulls do not)."""
    matched = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    result: np.ndarray = matched.to_numpy(zero_copy_only=False)
    return result


def _fixed_width_bytes(text: pa.Array, rows: np.ndarray, width: int, pad: bool = False) -> np.ndarray:
    """The bytes of ``text[rows]`` (ASCII values of ``width`` characters, or fewer left-padded with '0' when
    ``pad``) as a (len(rows), width) matrix."""
    chosen = text.take(pa.array(rows, pa.int64()))
    if pad:
        chosen = pc.utf8_lpad(chosen, width=width, padding="0")
    if len(chosen) == 0:
        return np.empty((0, width), dtype=np.uint8)
    offset_type = np.int64 if pa.types.is_large_string(chosen.type) else np.int32
    offsets = np.frombuffer(chosen.buffers()[1], dtype=offset_type)[chosen.offset : chosen.offset + len(chosen) + 1]
    data = np.frombuffer(chosen.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(-1, width)


def _checked(values: Column, pattern: str, width: int, check: CheckFunction, pad: bool = False) -> pd.Series:
    """Values of ``pattern``'s shape whose bytes (left-padded with '0' to ``width`` when ``pad``) pass ``check``."""
    text = as_text(values)
    valid = np.zeros(len(text), dtype=bool)
    rows = np.flatnonzero(matches(text, pattern))
    valid[rows] = check(_fixed_width_bytes(text, rows, width, pad))
    return _as_series(valid, values)


def _resident_id_check(matrix: np.ndarray) -> np.ndarray:
    checked: np.ndarray = (
        RESIDENT_ID_CHECK[((matrix[:, :17].astype(np.int64) - 48) @ RESIDENT_ID_WEIGHTS) % 11] == matrix[:, 17]
    )
    return checked


def _uscc_check(matrix: np.ndarray) -> np.ndarray:
    values = USCC_VALUES[matrix]
    checked: np.ndarray = (31 - (values[:, :17] @ USCC_WEIGHTS) % 31) % 31 == values[:, 17]
    return checked


def _luhn_check(matrix: np.ndarray) -> np.ndarray:
    """Luhn over digits left-padded with zeros (which add nothing): every second digit from the right doubled."""
    digits = matrix.astype(np.int64) - 48
    doubled = np.arange(digits.shape[1])[::-1] % 2 == 1
    digits[:, doubled] = LUHN_DOUBLED[digits[:, doubled]]
    checked: np.ndarray = digits.sum(axis=1) % 10 == 0
    return checked


def resident_id_valid(column: Column) -> pd.Series:
    """GB 11643: 17 digits and a check character; vectorised over the column."""
    return _checked(column, RESIDENT_ID_PATTERN, 18, _resident_id_check)


def uscc_valid(column: Column) -> pd.Series:
    """GB 32100: 18 characters of the 31-character alphabet, the last a check character."""
    return _checked(column, USCC_PATTERN, 18, _uscc_check)


def bank_card_valid(column: Column) -> pd.Series:
    """Bank card numbers: 13 to 19 digits (not starting with 0; spaces and hyphens between them ignored) with a
    valid Luhn check digit."""
    compact = pc.replace_substring_regex(as_text(column), r"[ -]", "")  # 6222 0212 3456 7890 128
    valid = _checked(compact, BANK_CARD_PATTERN, BANK_CARD_LENGTHS[1], _luhn_check, pad=True)
    return pd.Series(valid.to_numpy(), index=_index(column))


def phone_valid(column: Column) -> pd.Series:
    """Mainland phone numbers (``PHONE_PATTERN``): mobiles, optionally after +86, 0086 or 86 and grouped by hyphens
    or spaces, and landlines with their area code (0755-28123456, (010)62345678, +86 755 2812 3456)."""
    text = as_text(column)
    return _as_series(matches(text, PHONE_PATTERN), column)


def email_valid(column: Column) -> pd.Series:
    """E-mail addresses: ASCII letters, digits and ``._%+-`` at a domain name (``EMAIL_PATTERN``)."""
    text = as_text(column)
    return _as_series(matches(text, EMAIL_PATTERN), column)


def person_name_valid(column: Column) -> pd.Series:
    """Chinese person names: 2 to 4 Han characters starting with a common surname (欧阳 and other two-character
    surnames leave one or two characters for the given name), not ending like a place or an organisation."""
    text = as_text(column)
    shaped = matches(text, PERSON_NAME_PATTERN)
    single = pc.is_in(pc.utf8_slice_codeunits(text, 0, 1), _SURNAME_SET)
    double = pc.and_(
        pc.is_in(pc.utf8_slice_codeunits(text, 0, 2), _COMPOUND_SURNAME_SET),
        pc.greater_equal(pc.utf8_length(text), 3),
    )
    ending = pc.is_in(pc.utf8_slice_codeunits(text, -1), _NOT_NAME_ENDING_SET)
    surname = pc.fill_null(pc.and_(pc.or_(single, double), pc.invert(ending)), False)
    return _as_series(shaped & surname.to_numpy(zero_copy_only=False), column)


def address_valid(column: Column) -> pd.Series:
    """Street addresses: Han text (with digits, letters, #, - and brackets) of 6 to 100 characters naming an
    administrative unit (省 市 区 县 镇 乡 街道 社区 村) and after it a street-level place (路 街 巷 号 栋 室 ...),
    not ending like an organisation's name (办事处, 医院 ...)."""
    text = as_text(column)
    length = pc.utf8_length(text)
    sized = pc.and_(pc.greater_equal(length, ADDRESS_LENGTH[0]), pc.less_equal(length, ADDRESS_LENGTH[1]))
    valid = matches(text, ADDRESS_CHARACTERS) & matches(text, ADDRESS_MARKERS) & ~matches(text, NOT_ADDRESS_ENDINGS)
    return _as_series(valid & pc.fill_null(sized, False).to_numpy(zero_copy_only=False), column)


def vehicle_plate_valid(column: Column) -> pd.Series:
    """Motor vehicle plates (GA 36): a province abbreviation, a letter and 5 characters (粤B12345, 粤B1234学), or
    6 for new-energy plates (粤BD12345, 粤B12345F); a hyphen, a dot or a space after the letter is accepted
    (粤B-12345, 粤B·12345, 粤B 12345)."""
    text = as_text(column)
    return _as_series(matches(text, VEHICLE_PLATE_PATTERN), column)
