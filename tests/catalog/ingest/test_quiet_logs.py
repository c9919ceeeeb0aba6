"""An ingestion run logs the platform's own lines only: third-party loggers (Great Expectations above all, which
logged thousands of records while it loaded and validated) stay at WARNING, and nothing else reaches stdout or
stderr. Each run is a fresh process, as an Airflow task is: GX logs most while it loads."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from catalog.demo import SAMPLES
from catalog.ingest.third_party import THIRD_PARTY_LOGGERS, load_great_expectations, quiet_third_party_logging

ROOT = Path(__file__).resolve().parents[3]
POPULATION = "PSGA-RK-0001"
# The DAG task's body, with every log record kept (root logger at DEBUG) and counted by logger and level.
CHILD = """
import json, logging, sys
records = []

class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.name, record.levelno))

logging.basicConfig(level=logging.DEBUG, handlers=[Keep()])
from catalog.db import make_engine
from catalog.ingest.runner import pull_and_ingest
from catalog.settings import get_settings

settings = get_settings()
engine = make_engine(settings.resolved_database_url)
try:
    outcome = pull_and_ingest(engine, settings, sys.argv[1], trigger="test")
finally:
    engine.dispose()
print(json.dumps({"outcome": outcome.outcome, "records": records}))
"""
OURS = ("catalog", "api", "dags", "root", "__main__")


def run_ingest_in_fresh_process(engine: Engine, data_dir: Path) -> subprocess.CompletedProcess[str]:
    drop_folder = data_dir / "drop" / "psga" / "population"
    drop_folder.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "psga_population_20261120.csv", drop_folder / "psga_population_20261120.csv")
    env = {
        **os.environ,
        "DATASHARE_DATA_DIR": str(data_dir),
        "DATASHARE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "DATASHARE_ENV_FILE": os.devnull,
    }
    return subprocess.run(
        [sys.executable, "-c", CHILD, POPULATION], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_an_ingestion_run_logs_nothing_of_third_parties_below_warning(platform: Engine, tmp_path: Path) -> None:
    done = run_ingest_in_fresh_process(platform, tmp_path / "data")

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""  # no progress bar, warning or print of GX's (logging went to the test's handler only)
    *printed, last = done.stdout.splitlines()
    assert printed == []
    report = json.loads(last)
    assert report["outcome"] == "published"
    theirs = {(name, level) for name, level in report["records"] if not name.startswith(OURS)}
    assert {(name, level) for name, level in theirs if level < logging.WARNING} == set()


def test_the_quieting_leaves_a_level_set_higher_and_the_platform_loggers_alone() -> None:
    fsspec, ours = logging.getLogger("fsspec"), logging.getLogger("catalog.ingest.service")
    before = fsspec.level, ours.level
    try:
        fsspec.setLevel(logging.ERROR)
        ours.setLevel(logging.DEBUG)
        quiet_third_party_logging()
        assert fsspec.level == logging.ERROR
        assert ours.level == logging.DEBUG
        assert logging.getLogger("great_expectations").level == logging.WARNING
        assert "great_expectations" in THIRD_PARTY_LOGGERS
    finally:
        fsspec.setLevel(before[0])
        ours.setLevel(before[1])


def test_great_expectations_loads_without_scipy_stats_until_asked_for() -> None:
    code = (
        "import sys; from catalog.ingest.third_party import load_great_expectations as load; gx = load(); "
        "print('scipy.stats._stats_py' in sys.modules, 'altair.vegalite' in sys.modules); "
        "from scipy import stats; print(round(float(stats.entropy([0.5, 0.5])), 4), 'scipy.stats._stats_py' in "
        "sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["False False", "0.6931 True"]  # put off, then the real module when used
    assert load_great_expectations() is load_great_expectations()
