from __future__ import annotations

import pytest

from catalog.classification.masking import MASKERS, mask
from catalog.classification.types import MaskingRule as M


@pytest.mark.parametrize(
    ("rule", "value", "masked"),
    [
        (M.ID_NUMBER, "440307195307144048", "4403**********4048"),
        (M.ID_NUMBER, "11010519491231002X", "1101**********002X"),
        (M.PHONE, "17083016613", "170****6613"),
        (M.NAME, "陈华", "陈*"),
        (M.NAME, "欧阳娜娜", "欧***"),
        (M.ADDRESS, "深圳市龙岗区坪山街道283号", "深圳市龙岗区***"),
        (M.EMAIL, "chen.hua@ps.gov.cn", "c***@ps.gov.cn"),
        (M.REDACT, "江岭社区", "****"),
        (M.DROP, "anything", None),
        (M.NONE, "2026-11-20 02:00:00", "2026-11-20 02:00:00"),
        (M.ID_NUMBER, "1234", "****"),
    ],
)
def test_masking_keeps_a_shape_but_not_the_value(rule: M, value: str, masked: str | None) -> None:
    assert mask(rule, value) == masked


def test_hash_is_stable_and_not_the_value() -> None:
    assert mask(M.HASH, "440307195307144048") == mask(M.HASH, "440307195307144048") != "440307195307144048"


def test_every_rule_has_a_masker_and_none_stays_none() -> None:
    assert set(MASKERS) == set(M)
    assert all(mask(rule, None) is None for rule in M)
