from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from catalog.settings import Settings


def test_embedded_default_is_a_sqlite_file_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'datashare.db'}"


def test_environment_variables_configure_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_DATABASE_URL", "postgresql://db.example/datashare")
    monkeypatch.setenv("DATASHARE_MODE", "production")
    monkeypatch.setenv("DATASHARE_SECRET_KEY", "a-real-secret")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.resolved_database_url == "postgresql://db.example/datashare"


def test_the_default_secret_is_refused_outside_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_MODE", "production")
    monkeypatch.delenv("DATASHARE_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="DATASHARE_SECRET_KEY must be set"):
        Settings(_env_file=None)  # type: ignore[call-arg]
