"""The raw store, the drop area and the pipeline manifest on object storage (issue 16), against a real S3-compatible
server (SeaweedFS, tests/object_store.py), with the same tests as on local folders where they apply: exports pulled
from a drop folder by the ingestion path, kept raw under their SHA-256 with nothing partial ever visible, the same
export twice a duplicate, uploads still under way left alone; where sources may point when the drop area is a bucket;
the manifest written whole and read back, and what the DAG files do while the store cannot be reached."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from catalog import storage
from catalog.db import session_scope
from catalog.ingest import assets
from catalog.ingest.connectors import newest_file
from catalog.ingest.manifest import follow_catalog, refresh_manifest, write_manifest
from catalog.ingest.models import RawExport
from catalog.ingest.quarantine import release_batch
from catalog.ingest.runner import pull_and_ingest
from catalog.ingest.source_safety import (
    UnsafeSourceLocation,
    checked_file_url,
    department_drop_area,
    platform_stores,
)
from catalog.items import service as items
from catalog.items.schemas import ItemStatus
from catalog.settings import Settings
from tests.catalog.helpers import OFFICER
from tests.object_store import DropArea, ObjectStore, objects_under, pending_uploads
from tests.servers import free_port

POPULATION = "PSGA-RK-0001"
DEMO_PIPELINES = ["PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"]


@pytest.fixture
def settings(drop_area: DropArea, tmp_path: Path) -> Settings:
    """The platform's settings with its raw store and drop area on a local disk, or both on object storage."""
    if drop_area.kind == "local":
        return Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    return Settings(data_dir=tmp_path, raw_url=f"{drop_area.base}/raw", drop_url=str(drop_area.area),
                    _env_file=None)  # type: ignore[call-arg]  # fmt: skip


def kept(settings: Settings) -> dict[str, bytes]:
    """Every file (object) in the raw store, by its name under the store."""
    filesystem, root = storage.filesystem(str(settings.raw_store))
    return {path.removeprefix(root.rstrip("/") + "/"): bytes(filesystem.cat_file(path))
            for path in filesystem.find(root)}  # fmt: skip


def test_exports_pulled_from_the_drop_area_are_kept_raw_once(
    platform: Engine, settings: Settings, drop_area: DropArea, samples_dir: Path
) -> None:
    """Local or on object storage: the export is published and kept under its SHA-256, alone (nothing partial);
    the same export again is a duplicate that writes nothing; a quarantined batch is released from its raw copy."""
    first = (samples_dir / "psga_population_20261120.csv").read_bytes()
    drop_area.put("drop/psga/population/psga_population_20261120.csv", first)

    published = pull_and_ingest(platform, settings, POPULATION, "test")
    assert published is not None and (published.outcome, published.version) == ("published", 1)
    digest = hashlib.sha256(first).hexdigest()
    assert kept(settings) == {f"{POPULATION}/{digest}.csv": first}

    again = pull_and_ingest(platform, settings, POPULATION, "test")
    assert again is not None and again.outcome == "duplicate" and again.duplicate_of_outcome == "published"
    assert kept(settings) == {f"{POPULATION}/{digest}.csv": first}

    faulty = (samples_dir / "faulty" / "psga_population_20261122.csv").read_bytes()
    drop_area.put("drop/psga/population/psga_population_20261122.csv", faulty)
    quarantined = pull_and_ingest(platform, settings, POPULATION, "test")
    assert quarantined is not None and quarantined.outcome == "quarantined"
    with session_scope(platform) as session:
        stored = session.scalars(select(RawExport.stored_path).order_by(RawExport.id)).all()
        released = release_batch(session, quarantined.batch_id, "ops:wang", "the district re-counted")  # read back
    assert released.outcome == "released" and released.version == 2
    assert kept(settings) == {f"{POPULATION}/{digest}.csv": first,
                              f"{POPULATION}/{hashlib.sha256(faulty).hexdigest()}.csv": faulty}  # fmt: skip
    assert all(path.startswith(str(settings.raw_store)) for path in stored)


def test_an_empty_drop_folder_is_nothing_new(platform: Engine, settings: Settings, drop_area: DropArea) -> None:
    drop_area.put("drop/zsj/complaints/zsj_complaints_20261120.json", b"[]")  # another department's folder
    assert pull_and_ingest(platform, settings, POPULATION, "test") is None
    assert kept(settings) == {}


def test_an_upload_in_parts_is_not_seen_before_it_completes(s3_bucket: str, object_store: ObjectStore) -> None:
    filesystem, bucket = object_store.filesystem(), s3_bucket.removeprefix("s3://")
    filesystem.pipe_file(f"{bucket}/drop/psga/psga_20261120.csv", b"finished")
    upload = filesystem.call_s3("create_multipart_upload", Bucket=bucket, Key="drop/psga/psga_20261121.csv")
    filesystem.call_s3("upload_part", Bucket=bucket, Key="drop/psga/psga_20261121.csv", PartNumber=1,
                       UploadId=upload["UploadId"], Body=b"the first part")  # fmt: skip

    export = newest_file("drop/psga", "psga_*", s3_bucket, f"{s3_bucket}/drop/psga")

    assert export is not None and (export.name, export.data) == ("psga_20261120.csv", b"finished")
    assert pending_uploads(object_store, s3_bucket) == ["drop/psga/psga_20261121.csv"]


# --- where sources may point -------------------------------------------------------------------------------------

AREA = "s3://exchange/drop"


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("s3://exchange/drop/zsj/complaints", "outside the drop area"),  # another department's
        ("s3://exchange/drop/psgaxx", "outside the drop area"),
        ("s3://elsewhere/drop/psga", "outside the drop area"),
        ("s3://exchange/raw/psga", "outside the drop area"),
        ("drop/zsj", "outside the drop area"),  # relative: under the drop URL's parent
        ("file:///srv/drop/psga", "is read there"),  # the drop area is on object storage: no local folder
        ("/srv/drop/psga", "is read there"),
        ("https://exports.example/psga", "is read there"),
        ("s3://exchange/drop/psga/../zsj", "'..'"),
        ("s3://exchange/drop/psga/%2e%2e/zsj", "percent-encoding"),
        ("s3://exchange/drop/psg*", "wildcard"),
        ("s3://exchange/drop/psga/[a-z]*", "wildcard"),
    ],
)
def test_with_the_drop_area_on_object_storage_a_source_reads_only_its_part(location: str, reason: str) -> None:
    with pytest.raises(UnsafeSourceLocation, match=reason.replace("(", r"\(")):
        checked_file_url(location, "s3://exchange", f"{AREA}/psga")


def test_credentials_in_a_location_are_refused_and_not_repeated() -> None:
    for drop_dir in (f"{AREA}/psga", Path("/srv/drop/psga")):
        with pytest.raises(UnsafeSourceLocation, match="carries no credentials") as refused:
            checked_file_url("s3://AKIDEXAMPLE:wJalrXUtnFEMI@exchange/drop/psga", "s3://exchange", drop_dir)
        assert "wJalrXUtnFEMI" not in str(refused.value) and "AKIDEXAMPLE" not in str(refused.value)


def test_a_source_within_its_part_of_the_drop_area_is_read_there() -> None:
    assert checked_file_url("drop/psga/population", "s3://exchange", f"{AREA}/psga") == f"{AREA}/psga/population"
    assert checked_file_url(f"{AREA}/psga/population", "s3://exchange", f"{AREA}/psga") == f"{AREA}/psga/population"
    settings = Settings(drop_url="s3://exchange/drop/", _env_file=None)  # type: ignore[call-arg]
    assert department_drop_area(settings, "psga") == ("s3://exchange", f"{AREA}/psga")


def test_no_source_reads_the_platforms_own_stores() -> None:
    """The platform's credentials reach its raw store, manifest and outbound drops: a steward's location must not."""
    settings = Settings(raw_url="s3://platform/raw", manifest_url="s3://platform/pipelines.json",
                        delivery_file_roots=["s3://outbound"], _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    stores = platform_stores(settings)
    local = Path("/srv/drop/psga")
    for location in ("s3://platform/raw/PSGA-RK-0001", "s3://platform", "s3://outbound/zsj"):
        with pytest.raises(UnsafeSourceLocation, match="no DATASHARE_DROP_URL is set"):  # with a local drop area
            checked_file_url(location, Path("/srv"), local, stores)
    # Settings keep the drop area apart from the stores; were a drop folder to hold one all the same, it stays out.
    for location in ("s3://platform/raw/PSGA-RK-0001", "s3://platform", "s3://PLATFORM/raw/x"):
        with pytest.raises(UnsafeSourceLocation, match="platform's own store"):
            checked_file_url(location, "s3://platform", "s3://platform", stores)
    with pytest.raises(UnsafeSourceLocation, match="no DATASHARE_DROP_URL is set"):
        checked_file_url("s3://psga-exchange/population", Path("/srv"), local, stores)  # the platform's keys


# --- the pipeline manifest -----------------------------------------------------------------------------------------


def entries(manifest: Path | str) -> list[str]:
    return [entry["item"] for entry in assets.read_pipelines(manifest)]


def test_the_manifest_on_object_storage_follows_the_catalog(platform: Engine, s3_bucket: str,
                                                            object_store: ObjectStore) -> None:  # fmt: skip
    """Written whole after each commit that changes the pipelines (under a PostgreSQL advisory lock, or a file lock
    with SQLite), read back as the DAG files read it; nothing else appears beside it."""
    url = f"{s3_bucket}/platform/pipelines.json"
    follow_catalog(platform, url)
    refresh_manifest(platform, url)
    assert entries(url) == DEMO_PIPELINES

    with session_scope(platform) as session:
        items.transition(session, "SCJG-FR-0001", ItemStatus.RETIRED, OFFICER)

    assert entries(url) == ["PSGA-RK-0001", "ZSJ-MS-0001"]
    assert list(objects_under(object_store, f"{s3_bucket}/platform")) == [url]
    assert json.loads(objects_under(object_store, url)[url])["pipelines"][0]["item"] == "PSGA-RK-0001"


def _copy_of(url: str) -> Path:
    return storage.private_folder_path() / f"manifest-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def test_while_the_store_cannot_be_reached_the_last_copy_read_serves(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url, never_read = f"{s3_bucket}/pipelines.json", f"{s3_bucket}/other/pipelines.json"
    entry = {"item": POPULATION, "title": "人口", "schedule": "@daily", "department": "psga",
             "source_system": "population", "access": "file_drop", "format": "csv"}  # fmt: skip
    write_manifest(url, [entry])
    assert entries(url) == [POPULATION]
    with caplog.at_level(logging.ERROR, logger=assets.__name__):
        assert entries(f"{s3_bucket}/missing.json") == []
    assert "NO INGESTION PIPELINES" in caplog.text and "does not exist" in caplog.text
    caplog.clear()

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage_cache_cleared()
    with caplog.at_level(logging.ERROR, logger=assets.__name__):
        assert entries(url) == [POPULATION]  # the DAGs stay
        assert entries(never_read) == []
    first, second = (record.getMessage() for record in caplog.records)
    assert first.startswith("PIPELINE MANIFEST UNREACHABLE") and url in first and str(_copy_of(url)) in first
    assert second.startswith("NO INGESTION PIPELINES") and "cannot be read" in second and "no copy" in second


def storage_cache_cleared() -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


# --- whole objects -------------------------------------------------------------------------------------------------


def test_an_object_written_in_parts_appears_whole_or_not_at_all(s3_bucket: str, object_store: ObjectStore) -> None:
    filesystem, path = storage.filesystem(f"{s3_bucket}/outbound/zsj/PSGA-RK-0001-v1.csv")
    part = b"x" * (6 << 20)  # above s3fs's block size: a multipart upload

    def failing() -> Iterator[bytes]:
        yield part
        yield part
        raise RuntimeError("the database went away mid-version")

    with pytest.raises(RuntimeError, match="went away"):
        storage.write_whole(filesystem, path, failing())
    assert objects_under(object_store, s3_bucket) == {} and pending_uploads(object_store, s3_bucket) == []

    storage.write_whole(filesystem, path, iter([part, part, b"end"]))
    assert objects_under(object_store, s3_bucket) == {f"s3://{path}": part + part + b"end"}
    assert pending_uploads(object_store, s3_bucket) == []


def test_a_kept_raw_object_is_not_written_again(s3_bucket: str, object_store: ObjectStore) -> None:
    url = f"{s3_bucket}/raw/PSGA-RK-0001/{hashlib.sha256(b'a').hexdigest()}.csv"
    assert storage.put_whole(url, b"a", keep_existing=True)
    assert not storage.put_whole(url, b"a", keep_existing=True)
    assert storage.read_bytes(url) == b"a"


# --- credentials ---------------------------------------------------------------------------------------------------


def test_an_airflow_connection_in_the_amazon_providers_shape_gives_s3fs_its_options() -> None:
    from airflow.sdk import Connection

    connection = Connection(conn_id="datashare_s3", conn_type="aws", login="AKIDEXAMPLE", password="wJalrXUtnFEMI",
                            extra=json.dumps({"endpoint_url": "http://s3.internal:8333", "region_name": "cn-south-1",
                                              "aws_session_token": "FwoGZX"}))  # fmt: skip
    assert storage.connection_options(connection) == {
        "key": "AKIDEXAMPLE", "secret": "wJalrXUtnFEMI", "token": "FwoGZX", "endpoint_url": "http://s3.internal:8333",
        "client_kwargs": {"region_name": "cn-south-1"},
    }  # fmt: skip


def test_installed_credentials_reach_the_store_only_while_installed(
    s3_bucket: str, object_store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's process has no keys in its environment: those of its Airflow connection serve, then are gone."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name)
    storage_cache_cleared()
    options = {"key": object_store.access_key, "secret": object_store.secret_key, "endpoint_url": object_store.endpoint}
    url = f"{s3_bucket}/drop/psga/psga_20261120.csv"

    with storage.using_options(options):
        storage.put_whole(url, b"a\n1\n")
        assert newest_file("drop/psga", "psga_*", s3_bucket, f"{s3_bucket}/drop/psga") is not None

    with pytest.raises(storage.failures()):
        storage.read_bytes(url)
