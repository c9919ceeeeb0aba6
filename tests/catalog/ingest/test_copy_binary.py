"""The binary COPY encoding of a version's rows: every decimal arrives as numeric_in reads its text (value and written
scale), whichever way it is encoded, and every other declared type arrives as it was conformed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime

import psycopg
import pyarrow as pa
import pytest
from sqlalchemy.engine import make_url

from catalog.classification.types import DataType
from catalog.ingest import conform
from catalog.ingest.copy_binary import WIDEST_DIGITS, copy_parts, numeric_value, numeric_values
from tests.conftest import create_postgres_database, drop_postgres_database

WRITTEN = [
    "12.5", ".5", "7", "7.", "0", "-0", "-0.00", "0.0001", "00012.3400", "+5", "-3.25", "9999", "10000", "9999.9999",
    "0.00000001", "-99999999.99999999", "123456789012345678901234567890.123456789", "1" * (WIDEST_DIGITS + 1),
    "0." + "1" * (WIDEST_DIGITS + 1), "1e5", "1.5e-3", "1.50E2", "5E+3", "-2.5e-20", "0e7", "1e9999",
]  # fmt: skip


def _random_decimals(count: int, seed: int = 16) -> list[str]:
    """Decimals as conform lets them through: a sign, digits, a point, more digits, an exponent, each or not."""
    rng = random.Random(seed)

    def digits(most: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(0, most)))

    values = []
    for _ in range(count):
        value = rng.choice(["", "-", "+"]) + (digits(14) or "0")
        if rng.random() < 0.7:
            value += "." + digits(14)
        if rng.random() < 0.1:
            value += rng.choice("eE") + rng.choice(["", "-", "+"]) + str(rng.randint(0, 40))
        values.append(value)
    return values


def test_column_wise_and_one_by_one_encodings_agree() -> None:
    written = [*WRITTEN, *_random_decimals(5000)]
    encoded = numeric_values(pa.array([*written, None], pa.string()))
    assert encoded.to_pylist() == [*(numeric_value(text) for text in written), None]


def test_a_column_of_nulls_stays_null() -> None:
    assert numeric_values(pa.array([None, None], pa.string())).to_pylist() == [None, None]


def test_a_slice_is_encoded_from_its_own_rows() -> None:
    column = pa.array(["1.5", "-2", "3.25", None, "4e2"], pa.string())
    assert numeric_values(column.slice(2, 3)).to_pylist() == [numeric_value("3.25"), None, numeric_value("4e2")]


@pytest.fixture(scope="module")
def postgres() -> Iterator[psycopg.Connection]:
    url = create_postgres_database("datashare_copy_binary")
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn) as connection:
            yield connection
    finally:
        drop_postgres_database(url)


def _copied(connection: psycopg.Connection, table: pa.Table, columns: str, decimals: set[str]) -> list[tuple]:
    """The table's rows as PostgreSQL shows them (as text), once copied into columns of these types."""
    connection.execute(f"CREATE TEMPORARY TABLE copied ({columns}) ON COMMIT DROP")
    with connection.cursor() as cursor, cursor.copy("COPY copied FROM STDIN (FORMAT binary)") as copy:
        for part in copy_parts(table, decimals):
            copy.write(part)
    shown = ", ".join(f"{name}::text" for name in table.column_names)
    rows = connection.execute(f"SELECT {shown} FROM copied ORDER BY copied.{table.column_names[0]}").fetchall()
    connection.rollback()
    return rows


def test_decimals_arrive_as_postgresql_reads_their_text(postgres: psycopg.Connection) -> None:
    written = [*WRITTEN, *_random_decimals(3000, seed=7), None]
    table = pa.table({"n": pa.array(range(len(written)), pa.int64()), "amount": pa.array(written, pa.string())})
    copied = _copied(postgres, table, "n bigint, amount numeric", {"amount"})
    as_text = [row[0] for row in postgres.execute(
        "SELECT value::numeric::text FROM unnest(%s::text[]) WITH ORDINALITY AS t(value, n) ORDER BY n", (written,)
    ).fetchall()]  # fmt: skip
    postgres.rollback()
    assert [amount for _, amount in copied] == as_text


def test_every_declared_type_arrives_as_conformed(postgres: psycopg.Connection) -> None:
    table = pa.table({
        "_row": pa.array([1, 2], pa.int64()),
        "name": pa.array(["张三, \"引号\"\n换行", None], pa.string()),
        "count": pa.array([-(2**63), None], pa.int64()),
        "amount": pa.array(["0.50", None], pa.string()),
        "born": pa.array([date(1, 1, 1), None], pa.date32()),
        "seen": pa.array([datetime(2026, 12, 1, 23, 59, 59, 999999), None], pa.timestamp("us")),
        "valid": pa.array([True, None], pa.bool_()),
    })  # fmt: skip
    columns = "_row bigint, name text, count bigint, amount numeric, born date, seen timestamp, valid boolean"
    rows = _copied(postgres, table, columns, {"amount"})
    assert rows == [
        ("1", '张三, "引号"\n换行', str(-(2**63)), "0.50", "0001-01-01", "2026-12-01 23:59:59.999999", "true"),
        ("2", None, None, None, None, None, None),
    ]


def test_a_decimal_too_long_for_postgresql_is_a_cell_that_does_not_parse() -> None:
    """PostgreSQL's numeric holds 131,072 digits before the point and 16,383 after: a longer decimal is a row's type
    error (quarantined or dropped by the policy), not a failed run (it made the encoder fail, or PostgreSQL refuse)."""
    fits, too_long = "9" * conform.DECIMAL_CHARACTERS, "9" * (conform.DECIMAL_CHARACTERS + 1)
    values, bad = conform.TEXT_PARSERS[DataType.DECIMAL](pa.array([fits, too_long, "1e9999", "0." + "1" * 998]))
    assert values.to_pylist() == [fits, None, "1e9999", "0." + "1" * 998]
    assert bad.tolist() == [False, True, False, False]
    assert numeric_values(values.slice(0, 0)).to_pylist() == []
