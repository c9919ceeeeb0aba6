"""The platform's stores on object storage (raw exports, drop area, manifest, delivery roots) are given in their
canonical form (catalog/storage.py ``canonical``) and lie apart: a consumer's drop folder ``<root>/<department>``
or a source must never reach another store."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from catalog.settings import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "values",
    [
        {"delivery_file_roots": ["s3://ds"], "drop_url": "s3://ds/drop"},  # a consumer of department `drop`
        {"raw_url": "s3://ds/raw", "manifest_url": "s3://DS/raw/pipelines.json"},
        {"raw_url": "gcs://ds/raw", "drop_url": "gs://ds/raw/drop"},
        {"drop_url": "s3://ds/drop", "delivery_file_roots": ["s3://other", "s3://ds/drop/"]},
        {"delivery_file_roots": ["s3://out", "s3://out/more"]},
        {"raw_url": "s3://ds", "drop_url": "s3://ds"},
    ],
)
def test_stores_that_overlap_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="overlap"):
        settings(**values)


def test_stores_apart_are_taken_in_canonical_form() -> None:
    taken = settings(raw_url="S3://DS/raw/", drop_url="s3://ds/raw2", manifest_url="s3://ds/pipelines.json",
                     delivery_file_roots=["gcs://out/"])  # fmt: skip
    assert (taken.raw_url, taken.delivery_file_roots) == ("s3://ds/raw", ["gs://out"])


@pytest.mark.parametrize("url", ["s3:///ds/raw", "s3://ds/raw/#/..", "s3://ds//raw", "s3://ds/raw?x=1"])
def test_a_store_url_in_no_plain_spelling_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="is not an object-store URL"):
        settings(raw_url=url)
    with pytest.raises(ValidationError, match="is not an object-store URL"):
        settings(delivery_file_roots=[url])
