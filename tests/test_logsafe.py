"""Tracebacks in the platform's logs carry no values: what the database or a parser quotes is hidden."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from catalog.logsafe import WithoutValues, logger, redacted_message, redacted_traceback
from catalog.settings import Settings

RESIDENT_ID = "440307196501011234"
NAME = "赖小红"
PHONE = "138-0013-8000"


def test_a_duplicate_key_leaves_no_value_in_the_logged_traceback(
    engine: Engine, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    table = Table("logsafe_probe", MetaData(), Column("resident_id", String(18), primary_key=True))
    table.create(engine)
    try:
        with engine.begin() as connection:
            connection.execute(insert(table).values(resident_id=RESIDENT_ID))
        with pytest.raises(IntegrityError) as refused, engine.begin() as connection:
            connection.execute(insert(table).values(resident_id=RESIDENT_ID))
    finally:
        table.drop(engine)
    if backend == "postgresql":  # the server quotes the key in its DETAIL line: the raw traceback has it
        assert RESIDENT_ID in "".join(traceback.format_exception(refused.value))
    with caplog.at_level(logging.ERROR):
        try:
            raise RuntimeError("ingesting failed") from refused.value
        except RuntimeError:
            logger("catalog.test").exception("batch 7 failed")
    logged = caplog.text
    assert "batch 7 failed" in logged and "IntegrityError" in logged and "RuntimeError: ingesting failed" in logged
    assert RESIDENT_ID not in logged


def test_quoted_values_and_long_numbers_are_hidden_but_identifiers_stay() -> None:
    try:
        raise ValueError(f"Could not convert '{NAME}' with type str; constraint \"uq_person\"; id {RESIDENT_ID}")
    except ValueError as error:
        message = redacted_message(error)
        text = redacted_traceback(error)
    assert message == 'ValueError: Could not convert * with type str; constraint "uq_person"; id *'
    assert NAME not in text and RESIDENT_ID not in text and "Traceback (most recent call last):" in text
    assert 'raise ValueError(f"Could not convert' in text  # the code line stays as written


def test_the_apis_error_log_is_filtered_too(tmp_path: Path) -> None:
    create_app(Settings(data_dir=tmp_path))
    assert any(isinstance(installed, WithoutValues) for installed in logging.getLogger("uvicorn.error").filters)


def test_indented_messages_are_redacted_too_pydantic_errors_and_exception_groups() -> None:
    from pydantic import BaseModel

    class Complainant(BaseModel):
        phone: int

    try:
        Complainant(phone=f"{NAME} {PHONE}")  # type: ignore[arg-type]
    except ValueError as error:
        validation = redacted_traceback(error)
    try:
        raise ExceptionGroup("several", [ValueError(f"resident {RESIDENT_ID!r} bad")])
    except ExceptionGroup as error:
        group = redacted_traceback(error)
    assert NAME not in validation and PHONE not in validation and "Complainant" in validation
    assert RESIDENT_ID not in group and "ValueError: resident * bad" in group and 'File "' in group
