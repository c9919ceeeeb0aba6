from __future__ import annotations

import json

import jsonschema
import yaml

from catalog.cli import DEMO_CATALOG
from catalog.declarations.service import SCHEMA_PATH, catalog_json_schema
from tests.catalog.helpers import demo_raw, raw_field


def test_the_committed_json_schema_is_current() -> None:
    regenerate = "uv run datashare catalog schema --output catalog/declarations/catalog-file.schema.json"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == catalog_json_schema(), f"regenerate it: {regenerate}"


def test_the_demo_catalog_conforms_to_the_json_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(DEMO_CATALOG.read_text(encoding="utf-8")), schema)


def test_the_json_schema_rejects_an_unknown_semantic_type() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    raw = demo_raw()
    raw_field(raw, "PSGA-RK-0001", "姓名")["semantic_type"] = "passport"
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(raw))
    assert any("passport" in error.message for error in errors)
