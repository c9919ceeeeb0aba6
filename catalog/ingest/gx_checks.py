"""Great Expectations custom expectations for Chinese identifiers (imported only where validation runs:
``import great_expectations`` takes seconds, so DAG files never import this module).

Defining the classes registers them with GX for the process.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

RESIDENT_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
RESIDENT_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)  # by weighted sum mod 11
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # values 0..30; no I O S V Z
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
USCC_VALUES = np.full(256, -1, dtype=np.int64)
USCC_VALUES[np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)


def _ascii_matrix(values: pd.Series, width: int) -> np.ndarray:
    if len(values) == 0:
        return np.empty((0, width), dtype=np.uint8)
    return np.frombuffer("".join(values.tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, width)


def resident_id_valid(column: pd.Series) -> pd.Series:
    """GB 11643: 17 digits and a check character; vectorised over the column."""
    text = column.astype(str)
    shaped = text.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).to_numpy(dtype=bool)
    valid = np.zeros(len(text), dtype=bool)
    rows = np.flatnonzero(shaped)
    matrix = _ascii_matrix(text.iloc[rows], 18)
    valid[rows] = (
        RESIDENT_ID_CHECK[((matrix[:, :17].astype(np.int64) - 48) @ RESIDENT_ID_WEIGHTS) % 11] == matrix[:, 17]
    )
    return pd.Series(valid, index=column.index)


def uscc_valid(column: pd.Series) -> pd.Series:
    """GB 32100: 18 characters of the 31-character alphabet, the last a check character."""
    text = column.astype(str)
    shaped = text.str.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}").fillna(False).to_numpy(dtype=bool)
    valid = np.zeros(len(text), dtype=bool)
    rows = np.flatnonzero(shaped)
    values = USCC_VALUES[_ascii_matrix(text.iloc[rows], 18)]
    valid[rows] = (31 - (values[:, :17] @ USCC_WEIGHTS) % 31) % 31 == values[:, 17]
    return pd.Series(valid, index=column.index)


class ColumnValuesResidentIdValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.cn_resident_id_valid"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:  # nulls are dropped before this
        return resident_id_valid(column)


class ExpectColumnValuesToBeValidResidentId(ColumnMapExpectation):
    """Expect column values to be resident ID numbers (GB 11643) with a valid check character."""

    map_metric = "column_values.cn_resident_id_valid"
    success_keys = ("mostly",)


class ColumnValuesUsccValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.cn_uscc_valid"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return uscc_valid(column)


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """Expect column values to be unified social credit codes (GB 32100) with a valid check character."""

    map_metric = "column_values.cn_uscc_valid"
    success_keys = ("mostly",)
