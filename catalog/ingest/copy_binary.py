"""A version's rows in PostgreSQL's binary COPY format, encoded from Arrow: decimals exact, in their written scale.

PostgreSQL loads binary COPY rows with about two thirds of the work it spends on the same rows in CSV: it neither
splits lines nor parses dates, times and numbers. pgpq encodes the Arrow columns. A binary COPY field carries no type
(the column's receive function reads it), so each decimal, text in Arrow (conform keeps it as written), travels as
the bytes of the ``numeric`` value that ``numeric_in`` would make of that text: an Arrow binary column, which pgpq
passes on as it is. The usual decimals are encoded column-wise with numpy; a value with an exponent or more than
``WIDEST_DIGITS`` digits on either side of its point is encoded on its own, from Python's ``Decimal``.

numeric's binary form: int16 ndigits, weight, sign, dscale, then ndigits base-10000 digits (int16, big-endian), the
first one worth 10000**weight; no leading or trailing zero digits; zero has none; dscale: digits after the point.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
import pgpq
import pyarrow as pa
import pyarrow.compute as pc

NUMERIC_NEGATIVE = 0x4000
GROUP = 4  # decimal digits in one base-10000 digit
WIDEST_DIGITS = 64  # on either side of the point, for the column-wise encoding
ROWS_PER_WRITE = 4096  # rows encoded (about 1 MB) per write: the C heap, where the encoder puts them, stays small
SIGNS = np.frombuffer(b"+-", dtype=np.uint8)


def copy_parts(table: pa.Table, decimal_columns: set[str]) -> Iterator[bytes]:
    """The table as a binary COPY stream (header, rows, trailer); ``decimal_columns`` hold decimal text."""
    columns = [_numeric_column(column) if name in decimal_columns else column
               for name, column in zip(table.column_names, table.columns, strict=True)]  # fmt: skip
    encoded = pa.Table.from_arrays(columns, names=table.column_names)
    encoder = pgpq.ArrowToPostgresBinaryEncoder(encoded.schema)
    yield encoder.write_header()
    for batch in encoded.to_batches(max_chunksize=ROWS_PER_WRITE):
        yield encoder.write_batch(batch)
    yield encoder.finish()


def _numeric_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([numeric_values(chunk) for chunk in column.chunks], type=pa.binary())


def numeric_values(text: pa.Array) -> pa.Array:
    """Decimal text (an optional sign, digits with an optional point, an optional exponent) as the binary ``numeric``
    values numeric_in makes of it; nulls stay null."""
    if pa.types.is_large_string(text.type):
        text = text.cast(pa.string())
    rows = len(text)
    if not rows:
        return pa.array([], pa.binary())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=rows + 1, offset=text.offset * 4)
    characters = np.frombuffer(text.buffers()[2] or b"", dtype=np.uint8)
    if not len(characters):
        return pa.nulls(rows, pa.binary())  # nulls only (conform leaves no empty text)
    first, end = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    valid = np.asarray(pc.is_valid(text), dtype=bool) & (end > first)
    signed = valid & np.isin(characters[np.minimum(first, len(characters) - 1)], SIGNS)
    negative = signed & (characters[np.minimum(first, len(characters) - 1)] == ord("-"))
    dot = np.asarray(pc.fill_null(pc.find_substring(text, "."), -1), dtype=np.int64)
    point = np.where(dot >= 0, first + dot, end)
    whole_digits, scale = point - first - signed, np.where(dot >= 0, end - point - 1, 0)
    exponent = np.asarray(pc.fill_null(pc.find_substring(text, "e", ignore_case=True), -1), dtype=np.int64) >= 0
    plain = valid & ~exponent & (whole_digits <= WIDEST_DIGITS) & (scale <= WIDEST_DIGITS)
    encoded = _plain_numerics(characters, point, whole_digits, np.where(plain, scale, 0), plain, negative)
    odd = np.flatnonzero(valid & ~plain)
    if len(odd):
        odd_values = [numeric_value(value) for value in text.take(pa.array(odd)).to_pylist()]
        encoded = pc.replace_with_mask(encoded, pa.array(valid & ~plain), pa.array(odd_values, pa.binary()))
    return pc.if_else(pa.array(valid), encoded, pa.scalar(None, pa.binary()))


def _plain_numerics(
    characters: np.ndarray, point: np.ndarray, whole_digits: np.ndarray, scale: np.ndarray, plain: np.ndarray,
    negative: np.ndarray,
) -> pa.Array:  # fmt: skip
    """The plain rows' values (digits, a point, digits) read from the string bytes around each point, aligned there
    (the other rows: zero, for now)."""
    whole_width = _rounded_up(int(whole_digits[plain].max(initial=0)))
    fraction_width = _rounded_up(int(scale[plain].max(initial=0)))
    around = np.concatenate([np.arange(-whole_width, 0), np.arange(1, fraction_width + 1)]).astype(np.int32)
    digits = np.take(characters, point.astype(np.int32)[:, None] + around, mode="clip") - np.uint8(ord("0"))
    inside = (around >= -whole_digits[:, None]) & (around <= scale[:, None]) & plain[:, None]
    quads = np.where(inside, digits, np.uint8(0)).astype(np.int16).reshape(len(point), -1, GROUP)
    groups = ((quads[:, :, 0] * 10 + quads[:, :, 1]) * 10 + quads[:, :, 2]) * 10 + quads[:, :, 3]
    return _numerics(groups, whole_width // GROUP, scale, negative)


def _numerics(groups: np.ndarray, whole_groups: int, scale: np.ndarray, negative: np.ndarray) -> pa.Array:
    """Rows of base-10000 digits, the first ``whole_groups`` of them before the point, as numeric values."""
    rows, width = groups.shape
    nonzero = groups != 0
    some = nonzero.any(axis=1)
    first = nonzero.argmax(axis=1)
    last = width - 1 - nonzero[:, ::-1].argmax(axis=1)
    values = np.empty((rows, 4 + width), dtype=">i2")
    values[:, 0] = np.where(some, last - first + 1, 0)  # ndigits
    values[:, 1] = np.where(some, whole_groups - 1 - first, 0)  # weight
    values[:, 2] = np.where(some & negative, NUMERIC_NEGATIVE, 0)  # sign (zero is never negative)
    values[:, 3] = scale  # dscale
    values[:, 4:] = groups
    position = np.arange(width)
    kept = np.ones((rows, 4 + width), dtype=bool)
    kept[:, 4:] = some[:, None] & (position >= first[:, None]) & (position <= last[:, None])
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(kept.sum(axis=1, dtype=np.int32) * 2, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(values[kept].tobytes())])


def numeric_value(text: str) -> bytes:
    """One decimal's text as the binary ``numeric`` value numeric_in makes of it."""
    sign, digits, exponent = Decimal(text).as_tuple()
    assert isinstance(exponent, int)  # conform lets no NaN or infinity through
    written = "".join(map(str, digits))
    point = len(written) + exponent  # digits before the point (negative: zeros after it first)
    lead = -point % GROUP
    aligned = "0" * lead + written
    aligned += "0" * (-len(aligned) % GROUP)
    groups = [int(aligned[i : i + GROUP]) for i in range(0, len(aligned), GROUP)]
    weight = (point + lead) // GROUP - 1
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight, sign = 0, 0
    return struct.pack(f">4h{len(groups)}h", len(groups), weight, NUMERIC_NEGATIVE if sign else 0, max(0, -exponent),
                       *groups)  # fmt: skip


def _rounded_up(digits: int) -> int:
    return max(GROUP, -(-digits // GROUP) * GROUP)
