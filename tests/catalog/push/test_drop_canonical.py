"""A file drop's folder is compared in its canonical form (catalog/storage.py ``canonical``): no '#', '?', '..',
empty segments or empty bucket lets a consumer reach another department's folder under a delivery root."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.push.targets import InvalidTarget, checked_drop
from catalog.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, delivery_file_roots=["s3://outbound"], _env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "url",
    ["s3://outbound/deptc/#/../../deptd", "s3://outbound/deptc/?/../../deptd", "s3://outbound/deptc/../deptd",
     "s3://outbound/deptc//x", "s3:///outbound/deptc", "s3://outbound/deptc/%2e%2e/deptd", "s3://outbound/deptd",
     "s3://outbound"],
)  # fmt: skip
def test_a_file_drop_outside_the_departments_folder_is_refused(url: str, settings: Settings) -> None:
    with pytest.raises(InvalidTarget, match="under one of these"):
        checked_drop(url, settings, "deptc")


def test_a_file_drop_is_kept_as_it_was_checked(settings: Settings) -> None:
    assert checked_drop("S3://OUTBOUND/deptc/files/", settings, "deptc") == "s3://outbound/deptc/files"
    assert checked_drop("s3://outbound/deptc", settings, "deptc") == "s3://outbound/deptc"


def test_credentials_are_refused_without_being_repeated(settings: Settings) -> None:
    with pytest.raises(InvalidTarget, match="carries no credentials") as refused:
        checked_drop("s3://AKIDEXAMPLE:wJalrXUtnFEMI@outbound/deptc", settings, "deptc")
    assert "wJalrXUtnFEMI" not in str(refused.value)
