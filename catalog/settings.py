"""The platform's one typed settings object (environment prefix ``DATASHARE_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_ONLY_SECRET = "local-development-only-secret"
# Object stores (fsspec URLs) that may hold what several machines share: the raw store, the drop area, the pipeline
# manifest, file-drop deliveries (catalog/storage.py). Only s3fs is installed; the others need their fsspec package.
OBJECT_STORE_SCHEMES = ("s3", "gs", "gcs", "abfs", "az")
MIN_SECRET_BYTES = 32  # HS256 signs the access tokens: a shorter key is open to guessing offline


class Settings(BaseSettings):
    # No input in errors: a refused value may be a secret (a short secret key, a URL with keys in it).
    model_config = SettingsConfigDict(env_prefix="DATASHARE_", env_file=".env", extra="ignore",
                                      hide_input_in_errors=True)  # fmt: skip

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
    # The API's interactive docs (/docs, /redoc); unset, they are served in local mode only. /openapi.json stays.
    api_docs: bool | None = None
    # The web console (api/console): a sign-in ends after this long without a request (and a working day after it
    # began); its cookie is Secure in production mode, so the console is then served over HTTPS only.
    console_idle_minutes: float = Field(default=30.0, gt=0, le=600)
    # An ingestion run recorded as running for longer than this is taken as interrupted (its process on another host
    # cannot be asked); on the same host a run is interrupted as soon as its process is gone.
    ingest_run_timeout_hours: float = Field(default=6.0, gt=0)
    # Freshness (catalog/ops/freshness.py): an item is late once an export due by its schedule has not come this
    # long after it was due (at most half the schedule's period, so an hourly item is late within the hour).
    freshness_grace_minutes: float = Field(default=60.0, ge=0)

    # File sources (catalog/ingest/source_safety.py) are read only inside the drop area (default <data dir>/drop).
    # HTTP sources may not reach loopback, link-local, cloud-metadata or unspecified addresses unless their host (as
    # written in the location, or an address) is allowed here: DATASHARE_SOURCE_ALLOWED_HOSTS='["10.0.0.5"]'.
    drop_dir: Path | None = None
    source_allowed_hosts: list[str] = Field(default_factory=list)

    # Object storage (catalog/storage.py), so that the scheduler, the dag-processor, the workers and the API can run on
    # different machines: raw exports kept under raw_url (default <data dir>/raw), the drop area under drop_url
    # (instead of drop_dir; a relative source location is then taken under drop_url's parent, as it is under the data
    # folder locally), the pipeline manifest written to and read from manifest_url (default <data dir>/pipelines.json).
    # Each an s3:// (gs://, abfs://) URL, never with credentials in it: those come from the environment (for s3://:
    # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3 ...) or, inside Airflow tasks, from the Airflow
    # connection object_store_conn_id names (its login, password and extra endpoint_url / region_name).
    raw_url: str | None = None
    drop_url: str | None = None
    manifest_url: str | None = None
    object_store_conn_id: str | None = None

    # Where the API's abuse limits count (api/limits.py): memory:// in this process only (one API process);
    # redis://host:6379/1 to share them between API processes.
    rate_limit_storage: str = "memory://"

    # Notifications (catalog/notifications): mail goes through this SMTP server (no host: mail waits in the outbox),
    # security "starttls" or "ssl" (or "none" on a trusted relay), the password from the environment only. Links in
    # notices point at public_url. Deliveries are retried at doubling intervals from the base delay up
    # to the cap, and given up after max attempts; each send ends within the timeout. Webhooks may not reach
    # loopback, link-local or metadata addresses unless their host is allowed here: source_allowed_hosts does not
    # count, so a loopback allowed for one source is not opened to every steward's webhook.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_from: str = "datashare@localhost"
    notification_timeout_seconds: float = Field(default=10.0, gt=0)
    notification_max_attempts: int = Field(default=8, ge=1)
    notification_retry_base_seconds: float = Field(default=60.0, ge=0)
    notification_retry_max_seconds: float = Field(default=3600.0, ge=0)
    notification_allowed_hosts: list[str] = Field(default_factory=list)

    # Push delivery (catalog/push): webhooks are sent as notifications are (the same allowed hosts and timeout), with
    # a download link valid for delivery_link_minutes; a department's file drops go under <delivery_dir>/<department>
    # (default <data dir>/outbound) or, on object storage, under <root>/<department> of a root listed in
    # delivery_file_roots (e.g. ["s3://datashare-outbound"]); a database target gets at most delivery_database_seconds
    # per version.
    delivery_dir: Path | None = None
    delivery_file_roots: list[str] = Field(default_factory=list)
    delivery_link_minutes: float = Field(default=60.0, gt=0, le=24 * 60)
    delivery_database_seconds: float = Field(default=600.0, gt=0)

    # Health and metrics (api/health.py, api/metrics.py). /metrics asks for this bearer token when it is set; outside
    # local mode it is not served at all without one. With several API processes each writes its figures under
    # metrics_dir (default <data dir>/metrics, emptied when the server starts): one directory per server, never shared
    # by two hosts. Figures read from the database are computed at most every metrics_cache_seconds per process.
    metrics_token: SecretStr | None = None
    metrics_dir: Path | None = None
    metrics_cache_seconds: float = Field(default=10.0, ge=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)

    # Where people reach the platform's API: the links in notices, task logs and Airflow's required actions.
    public_url: str = "http://localhost:8000"
    # Where people reach Airflow's UI: the console's pipelines page links each item's DAG and its runs there.
    airflow_url: str = "http://localhost:8080"
    # How long a quarantined batch's required action in Airflow waits for a decision; then the batch stays
    # quarantined, the run fails, and it can still be decided through the API or the command line.
    quarantine_decision_hours: float = Field(default=72.0, gt=0)
    # The Airflow users (ids) who may answer it; the platform applies a decision as the platform user of the same name,
    # who must hold `runs operate` for the item's department.
    quarantine_deciders: list[str] = Field(default_factory=lambda: ["ops"])

    @field_validator("raw_url", "drop_url", "manifest_url")
    @classmethod
    def _object_store_url(cls, url: str | None) -> str | None:
        if url is not None and not url.strip():
            return None  # DATASHARE_RAW_URL= (blank, as compose passes an unset optional variable): not set
        return None if url is None else _canonical_store_url(url)

    @field_validator("delivery_file_roots")
    @classmethod
    def _object_store_roots(cls, roots: list[str]) -> list[str]:
        return [_canonical_store_url(root) for root in roots]

    @model_validator(mode="after")
    def _disjoint_stores(self) -> Settings:
        """No store lies in another: a consumer's drop folder (``<root>/<department>``) or a source's location could
        otherwise reach the raw exports, the manifest, the drop area or another delivery root."""
        named = [("DATASHARE_RAW_URL", self.raw_url), ("DATASHARE_DROP_URL", self.drop_url),
                 ("DATASHARE_MANIFEST_URL", self.manifest_url),
                 *((f"DATASHARE_DELIVERY_FILE_ROOTS[{index}]", root)
                   for index, root in enumerate(self.delivery_file_roots))]  # fmt: skip
        if not any(url for _, url in named):
            return self  # nothing to compare: and the DAG files' parse imports no fsspec
        from catalog import storage

        stores = [(name, storage.canonical(url)) for name, url in named if url]
        for index, (name, store) in enumerate(stores):
            for other_name, other in stores[index + 1 :]:
                if store.overlaps(other):
                    raise ValueError(f"{name} ({store.url}) and {other_name} ({other.url}) overlap: the raw store, "
                                     "the drop area, the manifest and each delivery root lie apart")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _one_drop_area(self) -> Settings:
        if self.drop_url is not None and self.drop_dir is not None:
            raise ValueError("set DATASHARE_DROP_DIR (a local drop area) or DATASHARE_DROP_URL (on object storage), "
                             "not both")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _refuse_default_secret_outside_local(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.mode != "local" and secret.strip() == LOCAL_ONLY_SECRET:
            raise ValueError("DATASHARE_SECRET_KEY must be set when DATASHARE_MODE is not 'local'")
        if self.mode != "local" and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"DATASHARE_SECRET_KEY must have at least {MIN_SECRET_BYTES} bytes outside local mode")
        token = self.metrics_token.get_secret_value() if self.metrics_token is not None else None
        if self.mode != "local" and token is not None and len(token.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"DATASHARE_METRICS_TOKEN must have at least {MIN_SECRET_BYTES} bytes outside local mode")
        return self

    @property
    def serves_api_docs(self) -> bool:
        return self.mode == "local" if self.api_docs is None else self.api_docs

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_drop_dir(self) -> Path:
        return (self.drop_dir or self.resolved_data_dir / "drop").expanduser().resolve()

    @property
    def resolved_delivery_dir(self) -> Path:
        return (self.delivery_dir or self.resolved_data_dir / "outbound").expanduser().resolve()

    @property
    def pipeline_manifest(self) -> Path:
        """What the DAG file reads (catalog/ingest/manifest.py writes it)."""
        return self.resolved_data_dir / "pipelines.json"

    @property
    def pipeline_manifest_location(self) -> Path | str:
        """Where the pipeline manifest is written and read: manifest_url, else the local ``pipeline_manifest``."""
        return self.manifest_url.rstrip("/") if self.manifest_url else self.pipeline_manifest

    @property
    def raw_store(self) -> Path | str:
        """Where raw exports are kept: raw_url, else <data dir>/raw."""
        return self.raw_url.rstrip("/") if self.raw_url else self.resolved_data_dir / "raw"

    @property
    def drop_area(self) -> Path | str:
        """Where file sources are read: drop_url, else the local drop folder (``resolved_drop_dir``)."""
        return self.drop_url.rstrip("/") if self.drop_url else self.resolved_drop_dir

    @property
    def resolved_audit_signing_key_file(self) -> Path:
        return (self.audit_signing_key_file or self.resolved_data_dir / "audit" / "signing-key.pem").expanduser()

    @property
    def resolved_audit_heads_file(self) -> Path:
        return (self.audit_heads_file or self.resolved_data_dir / "audit" / "heads.jsonl").expanduser()

    @property
    def resolved_metrics_dir(self) -> Path:
        return (self.metrics_dir or self.resolved_data_dir / "metrics").expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'datashare.db'}"


def _canonical_store_url(url: str) -> str:
    """An object-store URL in its canonical form (``storage.canonical``, the one every check compares)."""
    from catalog import storage  # it imports this module; fsspec only when an object store is set

    try:
        return storage.canonical(url).url
    except storage.CredentialsInURL as error:  # not repeated: it would be a secret in a log
        raise ValueError(str(error)) from None
    except storage.UnsafeURL as error:
        raise ValueError(f"{url!r} is not an object-store URL ({error})") from None


@lru_cache
def get_settings() -> Settings:
    """From the environment and the env file: DATASHARE_ENV_FILE, else .env in the working directory."""
    return Settings(_env_file=os.environ.get("DATASHARE_ENV_FILE", ".env"))  # type: ignore[call-arg]
