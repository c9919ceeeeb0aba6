"""A refused filter value is never repeated in the error: problem bodies end up in proxies' and clients' logs."""

from __future__ import annotations

import pytest

from catalog.classification.masking import MaskingRule
from catalog.classification.types import DataType
from catalog.delivery.service import InvalidFilter, ShownField, _typed

RESIDENT_ID = "440307196501011234"


@pytest.mark.parametrize("data_type", [DataType.INTEGER, DataType.DATE, DataType.DATETIME, DataType.BOOLEAN])
def test_a_value_of_the_wrong_type_is_refused_without_repeating_it(data_type: DataType) -> None:
    field = ShownField(name="出生日期", column="f1", data_type=data_type, masked=False, masking=MaskingRule.NONE)
    with pytest.raises(InvalidFilter) as refusal:
        _typed(field, RESIDENT_ID + "x")
    assert RESIDENT_ID not in refusal.value.message and "出生日期" in refusal.value.message
