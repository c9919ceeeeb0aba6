"""How ingestion loads what lives as long as its process (catalog.ingest.third_party): the garbage collector kept
out of the load, and Great Expectations' pydantic v1 models built with their fields copied lean. Loading GX that way
must give exactly the models a plain ``import great_expectations`` gives; each load runs in a fresh process, as an
Airflow task does."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from catalog.ingest.third_party import loading_for_good

ROOT = Path(__file__).resolve().parents[3]
# Every pydantic v1 model class GX defines, field by field (addresses, which differ between processes, left out).
DUMP = """
import json, re, sys
from pydantic.v1 import BaseModel
from pydantic.v1.fields import FieldInfo, ModelField
if sys.argv[1] == "lean":
    from catalog.ingest.third_party import load_great_expectations
    load_great_expectations()
    assert "__deepcopy__" not in vars(ModelField) and "__deepcopy__" not in vars(FieldInfo)
else:
    import great_expectations

def plain(value):
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))

def described(field):
    return {
        "type": plain(field.outer_type_), "inner": plain(field.type_), "required": plain(field.required),
        "default": plain(field.default), "alias": field.alias, "shape": field.shape, "none": field.allow_none,
        "info": plain(field.field_info), "class_validators": sorted(field.class_validators),
        "validators": [plain(v) for v in (field.pre_validators or []) + (field.validators or [])
                       + (field.post_validators or [])],
        "sub_fields": [described(sub) for sub in field.sub_fields or []],
        "config": field.model_config.__qualname__,
    }

models, pending = {}, list(BaseModel.__subclasses__())
while pending:
    model = pending.pop()
    pending.extend(model.__subclasses__())
    if model.__module__.startswith("great_expectations."):
        models[f"{model.__module__}.{model.__qualname__}"] = {
            name: described(field) for name, field in model.__fields__.items()
        }
print(json.dumps(models, sort_keys=True))
"""


def gx_models(how: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", DUMP, how], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    models: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return models


def test_great_expectations_loaded_lean_has_the_models_a_plain_import_has() -> None:
    lean, plain = gx_models("lean"), gx_models("plain")

    assert len(lean) > 300  # every expectation, datasource and config model of GX
    assert lean == plain


def test_what_was_loaded_is_frozen_and_the_collector_runs_again_after() -> None:
    frozen_before = gc.get_freeze_count()
    try:
        assert gc.isenabled()
        with loading_for_good():
            assert not gc.isenabled()
            loaded = [{"long": "lived"} for _ in range(100)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen_before + len(loaded)
    finally:
        gc.unfreeze()


def test_a_collector_someone_paused_stays_paused() -> None:
    gc.disable()
    try:
        with loading_for_good():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
