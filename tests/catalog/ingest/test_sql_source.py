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


WRITING_QUERIES = {
    "postgresql": [
        "DELETE FROM cases RETURNING case_no",
        "WITH added AS (INSERT INTO cases (case_no) VALUES ('X1') RETURNING case_no) SELECT * FROM added",
        "SELECT add_case()",  # a write hidden in a function: the read-only transaction refuses it
    ],
    "sqlite": [
        "UPDATE cases SET state = 'x' RETURNING case_no",
        "WITH gone AS (SELECT 1) DELETE FROM cases RETURNING case_no",
        "INSERT INTO cases (case_no) VALUES ('X1') RETURNING case_no",
    ],
}


@pytest.mark.parametrize("query", WRITING_QUERIES["postgresql"])
def test_a_query_that_writes_is_refused_on_postgresql(department_database: str, query: str) -> None:
    from catalog.ingest.connectors import query_database

    engine = create_engine(department_database)
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE FUNCTION add_case() RETURNS text LANGUAGE sql AS $$ INSERT INTO cases (case_no) VALUES ('X2') "
            "RETURNING case_no $$"
        ))  # fmt: skip
    with pytest.raises(ExportNotReachable, match=r"read-only transaction|data-modifying|syntax error"):
        query_database("env:ZSJ_CASES_DB", query)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM cases")) == 400
        assert connection.scalar(text("SELECT count(*) FROM cases WHERE state = 'x'")) == 0
    engine.dispose()


@pytest.fixture
def sqlite_department(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A department system on SQLite: cases 1..3."""
    path = tmp_path / "department.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE cases (case_no text, state text)"))
        connection.execute(text("INSERT INTO cases VALUES ('C1', 'open'), ('C2', 'open'), ('C3', 'closed')"))
    engine.dispose()
    monkeypatch.setenv("DEPT_SQLITE_DB", f"sqlite:///{path}")
    return path


@pytest.mark.parametrize("query", WRITING_QUERIES["sqlite"])
def test_a_query_that_writes_is_refused_on_sqlite(sqlite_department: Path, query: str) -> None:
    from catalog.ingest.connectors import query_database

    with pytest.raises(ExportNotReachable, match="readonly database"):
        query_database("env:DEPT_SQLITE_DB", query)
    engine = create_engine(f"sqlite:///{sqlite_department}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT case_no, state FROM cases ORDER BY case_no")).all() == [
            ("C1", "open"), ("C2", "open"), ("C3", "closed")
        ]  # fmt: skip
    engine.dispose()


def test_a_missing_sqlite_database_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.ingest.connectors import query_database

    monkeypatch.setenv("DEPT_SQLITE_DB", f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(ExportNotReachable, match="unable to open database file"):
        query_database("env:DEPT_SQLITE_DB", "SELECT 1")
    assert not (tmp_path / "missing.db").exists()


def test_a_dialect_that_cannot_be_read_only_is_not_queried(monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.ingest.connectors import query_database

    monkeypatch.setenv("DEPT_MSSQL_DB", "mssql+pymssql://user@host/db")
    with pytest.raises(ExportNotReachable, match=r"cannot be used|cannot be queried read-only"):
        query_database("env:DEPT_MSSQL_DB", "SELECT 1")


@pytest.mark.parametrize("url", ["postgresql+nosuchdriver://reader:pa55word@db/x", "not a url pa55word"])
def test_an_unusable_url_is_refused_without_repeating_it(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    from catalog.ingest.connectors import query_database

    monkeypatch.setenv("DEPT_BROKEN_DB", url)
    with pytest.raises(ExportNotReachable, match="cannot be used") as refused:
        query_database("env:DEPT_BROKEN_DB", "SELECT 1")
    assert "pa55word" not in refused.value.message  # the URL holds the password


def test_the_platforms_own_database_is_never_a_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Even a source declared before the rule cannot read the platform's users, tokens or audit trail."""
    from catalog.ingest.connectors import query_database

    monkeypatch.setenv("DATASHARE_DATABASE_URL", f"sqlite:///{tmp_path / 'platform.db'}")
    with pytest.raises(ExportNotReachable, match="one of the platform's own variables"):
        query_database("env:DATASHARE_DATABASE_URL", "SELECT username, password_hash FROM user_account")
