from __future__ import annotations

import pyarrow as pa
import pytest
from sqlalchemy import Engine, String, literal, select

from catalog.classification.masking import MASKERS, mask, mask_column, mask_sql, pseudonym_key
from catalog.classification.types import MaskingRule as M

KEY = pseudonym_key("a test secret")


@pytest.mark.parametrize(
    ("rule", "value", "masked"),
    [
        (M.ID_NUMBER, "440307195307144048", "4403**********4048"),
        (M.ID_NUMBER, "11010519491231002X", "1101**********002X"),
        (M.PHONE, "17083016613", "170****6613"),
        (M.NAME, "陈华", "陈*"),
        (M.NAME, "欧阳娜娜", "欧***"),
        (M.NAME, "陈", "*"),
        (M.ADDRESS, "深圳市龙岗区坪山街道283号", "深圳市龙岗区***"),
        (M.ADDRESS, "深圳市龙岗区", "******"),
        (M.EMAIL, "chen.hua@ps.gov.cn", "c***@ps.gov.cn"),
        (M.EMAIL, "@ps.gov.cn", "***@ps.gov.cn"),
        (M.EMAIL, "a@b@c", "a***@b@c"),
        (M.EMAIL, "不是邮箱", "不***"),
        (M.REDACT, "江岭社区", "****"),
        (M.REDACT, "", ""),
        (M.DROP, "anything", None),
        (M.NONE, "2026-11-20 02:00:00", "2026-11-20 02:00:00"),
        (M.ID_NUMBER, "1234", "****"),
        (M.ID_NUMBER, "12345678", "********"),
        (M.ID_NUMBER, "123456789", "1234*6789"),
    ],
)
def test_masking_keeps_a_shape_but_not_the_value(rule: M, value: str, masked: str | None) -> None:
    assert mask(rule, value, KEY) == masked


def test_a_column_is_masked_as_each_of_its_values_is() -> None:
    values = ["440307195307144048", None, "陈华", "", "x@y.cn", "=1+2"]
    for rule in M:
        column = mask_column(rule, pa.array(values), KEY).to_pylist()
        assert column == [mask(rule, value, KEY) for value in values], rule


def test_hash_is_a_keyed_stable_pseudonym() -> None:
    value = "440307195307144048"
    assert mask(M.HASH, value, KEY) == mask(M.HASH, value, KEY) != value
    assert len(mask(M.HASH, value, KEY) or "") == 16
    assert mask(M.HASH, value, pseudonym_key("another secret")) != mask(M.HASH, value, KEY)


def test_every_rule_has_a_masker_and_none_stays_none() -> None:
    assert set(MASKERS) | {M.HASH} == set(M)
    assert all(mask(rule, None, KEY) is None for rule in M)


TRICKY = [
    "440307195307144048",
    "陈华",
    "陈",
    "",
    "x@y.cn",
    "@d",
    "a@b@c",
    "不是邮箱",
    "=1+2",
    "深圳市龙岗区坪山街道283号",
    None,
]


def test_postgresql_masks_a_download_exactly_as_the_reference_does(engine: Engine) -> None:
    """PostgreSQL masks CSV downloads itself: every rule's SQL gives the reference's text, the HMAC included."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the rules as SQL serve PostgreSQL only")
    with engine.connect() as connection:
        for rule in set(M) - {M.DROP}:
            in_sql = [connection.scalar(select(mask_sql(rule, literal(value, String), KEY))) for value in TRICKY]
            assert in_sql == mask_column(rule, pa.array(TRICKY, pa.string()), KEY).to_pylist(), rule
