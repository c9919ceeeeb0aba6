from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from catalog.settings import LOCAL_ONLY_SECRET, Settings


def test_embedded_default_is_a_sqlite_file_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'datashare.db'}"


def test_environment_variables_configure_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_DATABASE_URL", "postgresql://db.example/datashare")
    monkeypatch.setenv("DATASHARE_MODE", "production")
    monkeypatch.setenv("DATASHARE_SECRET_KEY", "a-real-secret-of-at-least-32-bytes")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.resolved_database_url == "postgresql://db.example/datashare"


def test_the_default_secret_is_refused_outside_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_MODE", "production")
    monkeypatch.delenv("DATASHARE_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="DATASHARE_SECRET_KEY must be set"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("secret", "refusal"),
    [
        (f" {LOCAL_ONLY_SECRET}\n", "DATASHARE_SECRET_KEY must be set"),  # the default, pasted with whitespace
        ("x" * 31, "at least 32 bytes"),
        ("密钥" * 5, "at least 32 bytes"),  # 10 characters, 30 bytes
    ],
)
def test_production_refuses_a_weak_secret_key(monkeypatch: pytest.MonkeyPatch, secret: str, refusal: str) -> None:
    monkeypatch.setenv("DATASHARE_MODE", "production")
    monkeypatch.setenv("DATASHARE_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match=refusal):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_takes_a_secret_key_of_32_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_MODE", "production")
    monkeypatch.setenv("DATASHARE_SECRET_KEY", "密钥" * 5 + "xy")  # 12 characters, 32 bytes
    assert len(Settings(_env_file=None).secret_key.get_secret_value().encode()) == 32  # type: ignore[call-arg]


def test_local_mode_keeps_its_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATASHARE_SECRET_KEY", raising=False)
    assert Settings(_env_file=None).secret_key.get_secret_value() == LOCAL_ONLY_SECRET  # type: ignore[call-arg]
