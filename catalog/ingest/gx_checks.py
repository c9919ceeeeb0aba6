"""Great Expectations custom expectations for Chinese identifiers, phone numbers and e-mail addresses (imported
only where validation runs: ``import great_expectations`` takes seconds, so DAG files never import this module).

Defining the classes registers them with GX for the process. The rules themselves (shapes, check characters)
live in ``catalog.classification.identifiers`` (free of GX), shared with the detection of sensitive fields: a
type detection proposes for a field is one these expectations accept.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from catalog.classification.identifiers import email_valid, phone_valid, resident_id_valid, uscc_valid

__all__ = [
    "ExpectColumnValuesToBeValidEmail",
    "ExpectColumnValuesToBeValidPhone",
    "ExpectColumnValuesToBeValidResidentId",
    "ExpectColumnValuesToBeValidUscc",
    "email_valid",
    "phone_valid",
    "resident_id_valid",
    "uscc_valid",
]


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


class ColumnValuesPhoneValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.cn_phone_valid"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return phone_valid(column)


class ExpectColumnValuesToBeValidPhone(ColumnMapExpectation):
    """Expect column values to be mainland mobile or landline numbers, as detection recognises them."""

    map_metric = "column_values.cn_phone_valid"
    success_keys = ("mostly",)


class ColumnValuesEmailValid(ColumnMapMetricProvider):
    condition_metric_name = "column_values.email_valid"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return email_valid(column)


class ExpectColumnValuesToBeValidEmail(ColumnMapExpectation):
    """Expect column values to be e-mail addresses, as detection recognises them."""

    map_metric = "column_values.email_valid"
    success_keys = ("mostly",)
