"""The DAG file finds the pipeline manifest through the platform's settings, as everything else does (a `.env` in
the Airflow process's working directory, or the file DATASHARE_ENV_FILE names), and says loudly when it is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.dags.conftest import DAGS

PARSE = (
    "import runpy, sys; found = runpy.run_path(sys.argv[1]); "
    "print(found['MANIFEST']); print([entry['item'] for entry in found['pipelines']()])"
)
ENTRY = {"item": "PSGA-RK-0001", "title": "人口", "schedule": "@daily", "department": "psga",
         "source_system": "population", "access": "file_drop", "format": "csv"}  # fmt: skip


def parse(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Parse the ingestion DAG file in a fresh process, as Airflow's DAG processor does."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DATASHARE_")}
    return subprocess.run([sys.executable, "-c", PARSE, str(DAGS / "ingest_items.py")], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip


def manifest_in(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "pipelines.json").write_text(json.dumps({"pipelines": [ENTRY]}), encoding="utf-8")
    return folder / "pipelines.json"


def test_the_manifest_is_found_through_a_dot_env_file(tmp_path: Path) -> None:
    path = manifest_in(tmp_path / "platform-data")
    (tmp_path / ".env").write_text(f"DATASHARE_DATA_DIR={path.parent}\n", encoding="utf-8")

    result = parse(tmp_path)

    assert result.stdout.splitlines() == [str(path), "['PSGA-RK-0001']"]


def test_the_manifest_is_found_through_the_env_file_named(tmp_path: Path) -> None:
    path = manifest_in(tmp_path / "platform-data")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "datashare.env").write_text(f"DATASHARE_DATA_DIR={path.parent}\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()

    result = parse(tmp_path / "elsewhere", DATASHARE_ENV_FILE=str(tmp_path / "etc" / "datashare.env"))

    assert result.stdout.splitlines() == [str(path), "['PSGA-RK-0001']"]


def test_a_missing_manifest_is_an_error_in_the_log(tmp_path: Path) -> None:
    result = parse(tmp_path, DATASHARE_DATA_DIR=str(tmp_path / "nowhere"))

    assert result.stdout.splitlines()[-1] == "[]"
    missing = str(tmp_path / "nowhere" / "pipelines.json")
    error = next(line for line in (result.stdout + result.stderr).splitlines() if missing in line)  # Airflow's logging
    assert "error" in error and "NO INGESTION PIPELINES" in error and "datashare catalog import" in error
