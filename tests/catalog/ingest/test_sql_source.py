"""A source system reached as a SQL database: a real second PostgreSQL database stands in for a department's
system, queried read-only; the rows are kept raw as JSON lines and go through the same path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from catalog.ingest.connectors import ExportNotReachable
from tests.catalog.helpers import pull_complaints_from
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture
def department_database(samples_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The complaints system's database, holding the sample complaints."""
    import json

    url = create_postgres_database("datashare_dept")
    engine = create_engine(url)
    records = json.loads((samples_dir / "zsj_complaints_20261120.json").read_text(encoding="utf-8"))
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE TABLE cases (case_no text, case_type text, channel text, received timestamp, closed timestamp,"
            " handler text, state text, phone text)"
        ))  # fmt: skip
        connection.execute(
            text("INSERT INTO cases VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"),
            [dict(zip("abcdefgh", [r["事件编号"], r["事件类型"], r["来源渠道"], r["受理时间"], r["办结时间"] or None,
                                   r["处置部门"], r["状态"], r["诉求人电话"]], strict=True)) for r in records],
        )  # fmt: skip
    engine.dispose()
    monkeypatch.setenv("ZSJ_CASES_DB", url)
    yield url
    drop_postgres_database(url)


QUERY = (
    'SELECT case_no AS "事件编号", case_type AS "事件类型", channel AS "来源渠道", received AS "受理时间", '
    'closed AS "办结时间", handler AS "处置部门", state AS "状态", phone AS "诉求人电话" FROM cases'
)


def test_a_sql_source_publishes_through_the_same_path(
    backend: str, database_factory: Any, department_database: str, tmp_path: Path
) -> None:
    outcome = pull_complaints_from(
        {"access": "sql", "location": "env:ZSJ_CASES_DB", "query": QUERY}, database_factory(backend), tmp_path
    )
    assert outcome is not None and (outcome.outcome, outcome.rows_accepted) == ("published", 400)


def test_a_missing_database_url_is_a_clear_error(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.ingest.connectors import query_database

    monkeypatch.delenv("NO_SUCH_DB_URL", raising=False)
    with pytest.raises(ExportNotReachable, match="environment variable NO_SUCH_DB_URL"):
        query_database("env:NO_SUCH_DB_URL", "select 1")


def test_a_failing_query_is_a_clear_error(department_database: str) -> None:
    from catalog.ingest.connectors import query_database

    with pytest.raises(ExportNotReachable, match='relation "nosuch" does not exist'):
        query_database("env:ZSJ_CASES_DB", "SELECT * FROM nosuch")
    with pytest.raises(ExportNotReachable, match="read-only transaction"):
        query_database("env:ZSJ_CASES_DB", "DELETE FROM cases RETURNING case_no")
