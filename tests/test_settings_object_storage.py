"""Settings for object storage (issue 16): the local defaults stay as they were; the raw store, the drop area and the
pipeline manifest may each be an object-store URL, never one carrying credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from catalog.settings import Settings


def test_by_default_everything_stays_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert settings.raw_store == tmp_path.resolve() / "raw"
    assert settings.drop_area == tmp_path.resolve() / "drop" == settings.resolved_drop_dir
    assert settings.pipeline_manifest_location == tmp_path.resolve() / "pipelines.json" == settings.pipeline_manifest
    assert settings.object_store_conn_id is None


def test_the_shared_stores_are_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_RAW_URL", "s3://datashare/raw/")
    monkeypatch.setenv("DATASHARE_DROP_URL", "s3://datashare-drop")
    monkeypatch.setenv("DATASHARE_MANIFEST_URL", "s3://datashare/pipelines.json")
    monkeypatch.setenv("DATASHARE_OBJECT_STORE_CONN_ID", "datashare_s3")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.raw_store, settings.drop_area, settings.pipeline_manifest_location) == (
        "s3://datashare/raw",
        "s3://datashare-drop",
        "s3://datashare/pipelines.json",
    )
    assert settings.object_store_conn_id == "datashare_s3"


@pytest.mark.parametrize("url", ["/srv/raw", "file:///srv/raw", "https://s3.example/raw", "s3://", "ftp://x/raw"])
def test_a_shared_store_is_an_object_store_url(url: str) -> None:
    with pytest.raises(ValidationError, match="is not an object-store URL"):
        Settings(raw_url=url, _env_file=None)  # type: ignore[call-arg]


def test_a_url_with_credentials_is_refused_without_repeating_them() -> None:
    with pytest.raises(ValidationError, match="carries no credentials") as refused:
        Settings(manifest_url="s3://AKIDEXAMPLE:wJalrXUtnFEMI@datashare/pipelines.json", _env_file=None)  # type: ignore[call-arg]
    assert "wJalrXU" not in str(refused.value) and "AKIDEXAMPLE" not in str(refused.value)


def test_a_blank_url_is_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_RAW_URL", "")
    assert Settings(_env_file=None).raw_url is None  # type: ignore[call-arg]


def test_one_drop_area_only(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not both"):
        Settings(drop_dir=tmp_path, drop_url="s3://datashare/drop", _env_file=None)  # type: ignore[call-arg]
