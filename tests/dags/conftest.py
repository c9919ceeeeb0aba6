"""Airflow for the DAG tests: its own home and SQLite metadata database per test process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="datashare-airflow-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)  # before anything imports airflow
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
DAGS = Path(__file__).resolve().parents[2] / "dags"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    yield AIRFLOW_HOME
