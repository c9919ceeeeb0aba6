"""`datashare --help` loads no service: the command groups kept in modules of their own are listed from
``DEFERRED_GROUPS`` and imported only when one of their commands runs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.cli import DEFERRED_GROUPS, app

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "great_expectations", "sqlalchemy", "alembic", "casbin", "pwdlib", "jwt", "catalog.settings")


def test_help_imports_no_service_nor_a_deferred_group() -> None:
    code = (
        "import json, sys; from catalog.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert {name for name in HEAVY if name in loaded} == set()
    assert {module for module, _, _ in DEFERRED_GROUPS.values()} & loaded == set()
    for name in DEFERRED_GROUPS:
        assert name in done.stdout


@pytest.mark.parametrize("name", sorted(DEFERRED_GROUPS))
def test_a_deferred_group_is_listed_with_its_own_help_and_runs_when_invoked(name: str) -> None:
    module, attribute, listed_help = DEFERRED_GROUPS[name]
    assert getattr(importlib.import_module(module), attribute).info.help == listed_help

    result = CliRunner().invoke(app, [name, "--help"])

    assert result.exit_code == 0, result.output
    assert f"{name} [OPTIONS] COMMAND [ARGS]" in result.output
