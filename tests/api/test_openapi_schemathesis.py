"""Schemathesis over the OpenAPI document: generated requests to every operation, as a data officer, as a
consumer department's user and anonymously, never get a 5xx, and every response matches the documented
schema (status, content type, body)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from api.limits import Limits, Rates

FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
# Declarations have rules JSON Schema cannot say (valid cron expressions, minimum levels per semantic type, a
# field named twice): a schema-valid body may rightly be refused, so "positive data acceptance" is left out.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def operations(client: TestClient) -> list[Any]:
    unlimited = Rates("1000000/minute", "1000000/minute", "1000000/minute", "1000000/minute")
    client.app.state.platform.limits = Limits(rates=unlimited)  # type: ignore[attr-defined]
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation the schema cannot describe: {result.err()}"
        operations.append(result.ok())
    return operations


@pytest.mark.parametrize("who", ["officer", "zsj-user", "anonymous"])
def test_generated_requests_get_no_5xx_and_documented_responses(
    operations: list[Any], who: str, as_: dict[str, dict[str, str]]
) -> None:
    headers = as_.get(who, {})
    assert len(operations) >= 15
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
