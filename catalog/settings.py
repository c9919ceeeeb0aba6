"""The platform's one typed settings object (environment prefix ``DATASHARE_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_ONLY_SECRET = "local-development-only-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATASHARE_", env_file=".env", extra="ignore")

    mode: Literal["local", "production"] = "local"
    data_dir: Path = Path("data")
    database_url: str | None = None
    secret_key: SecretStr = SecretStr(LOCAL_ONLY_SECRET)
    # Subscriptions: unconditional items whose requested fields are at or below this level are approved at once;
    # requests reaching officer_level also need a data officer; no subscription runs longer than max days.
    auto_approve_max_level: int = 2
    officer_level: int = 3
    max_subscription_days: int = 366
    # How stale an API process's memory of access may get: it polls the access change log at most this often
    # (and at once after it made a change itself). 0 polls on every request.
    access_refresh_seconds: float = 0.5
    # Worker threads per API process for blocking (database) work.
    api_threads: int = Field(default=4, ge=1)
    # The audit chain (catalog.audit.chain): the Ed25519 key that signs sealed blocks lives outside the database
    # (default <data dir>/audit/signing-key.pem, made with mode 600 on first use in local mode only); signed heads
    # are appended to a file outside it too (default <data dir>/audit/heads.jsonl). Earlier keys' public halves
    # (base64, as `datashare audit head` prints them) stay trusted by verification after a key is replaced.
    audit_signing_key_file: Path | None = None
    audit_heads_file: Path | None = None
    audit_trusted_public_keys: list[str] = Field(default_factory=list)
    # Events per sealed block; how long a seal waits (PostgreSQL) for transactions that may still commit events
    # below its watermark before it leaves them to the next run.
    audit_block_size: int = Field(default=10_000, ge=1, le=1_000_000)
    audit_seal_wait_seconds: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _refuse_default_secret_outside_local(self) -> Settings:
        if self.mode != "local" and self.secret_key.get_secret_value() == LOCAL_ONLY_SECRET:
            raise ValueError("DATASHARE_SECRET_KEY must be set when DATASHARE_MODE is not 'local'")
        return self

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_audit_signing_key_file(self) -> Path:
        return (self.audit_signing_key_file or self.resolved_data_dir / "audit" / "signing-key.pem").expanduser()

    @property
    def resolved_audit_heads_file(self) -> Path:
        return (self.audit_heads_file or self.resolved_data_dir / "audit" / "heads.jsonl").expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'datashare.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
