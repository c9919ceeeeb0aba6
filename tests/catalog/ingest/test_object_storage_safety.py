"""Object-store locations compared in one canonical form (catalog/storage.py ``canonical``), sources never read with
the platform's credentials outside the drop area on object storage, file patterns that name files only, and the
pipeline manifest's read at a DAG file's parse: quick against a store that never answers, its copy kept privately and
never at the cost of what was read. Against a real S3-compatible server (SeaweedFS, tests/object_store.py)."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from catalog import storage
from catalog.departments.schemas import SourceSystemDeclaration
from catalog.ingest import assets
from catalog.ingest.connectors import newest_file
from catalog.ingest.manifest import write_manifest
from catalog.ingest.source_safety import UnsafeSourceLocation, checked_file_url, platform_stores
from catalog.settings import Settings
from tests.object_store import ObjectStore

POPULATION = "PSGA-RK-0001"
ENTRY = {"item": POPULATION, "title": "人口", "schedule": "@daily", "department": "psga",
         "source_system": "population", "access": "file_drop", "format": "csv"}  # fmt: skip
DROP = "s3://exchange/drop"

# --- 1. one canonical form -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["s3:///raw/x", "s3://", "s3:///", "s3://raw//x", "s3://raw/./x", "s3://raw/a/../x", "s3://raw/x/#/../y",
     "s3://raw/x?versionId=1", "s3://raw/%2e%2e/x", "s3://raw\\x", "s3://ra w/x", "s3://raw/x\n", "ftp://raw/x",
     "s3://raw:9000/x"],
)  # fmt: skip
def test_an_object_url_in_no_plain_spelling_is_refused(url: str) -> None:
    with pytest.raises(storage.UnsafeURL):
        storage.canonical(url)


@pytest.mark.parametrize(
    ("url", "folder"),
    [("s3://RAW/x", "s3://raw"), ("S3://raw/x/", "s3://raw"), ("gcs://b/x", "gs://b"), ("az://c/x", "abfs://c/"),
     ("s3://raw", "s3://raw/")],
)  # fmt: skip
def test_spellings_of_one_store_compare_as_one(url: str, folder: str) -> None:
    assert storage.inside(url, folder)


def test_folders_compare_by_segment_not_by_string() -> None:
    assert not storage.inside("s3://raw/x2", "s3://raw/x")
    assert not storage.inside("s3://raw2/x", "s3://raw")
    assert storage.canonical("GCS://Bucket/Key/").url == "gs://bucket/Key"


@pytest.mark.parametrize(
    "location",
    ["drop/psga/#/../../zsj", f"{DROP}/psga/#/../../zsj", f"{DROP}/psga//x", f"{DROP}/psga/./x",
     "s3:///exchange/drop/psga/x", f"{DROP}/psga/x?versionId=1"],
)  # fmt: skip
def test_a_source_location_in_a_second_spelling_is_refused(location: str) -> None:
    with pytest.raises(UnsafeSourceLocation):
        checked_file_url(location, "s3://exchange", f"{DROP}/psga")


def test_a_source_location_is_read_as_it_was_checked() -> None:
    assert checked_file_url("S3://EXCHANGE/drop/psga/pop/", "s3://exchange", f"{DROP}/psga") == f"{DROP}/psga/pop"


# --- 2. no object-store source without a drop area on object storage -----------------------------------------------


def test_with_a_local_drop_area_no_object_store_location_is_read(s3_bucket: str, object_store: ObjectStore,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    """With the platform's keys in the environment, `s3:///<bucket>/raw` would read the platform's raw exports."""
    raw = f"{s3_bucket}/raw"
    object_store.filesystem().pipe_file(f"{raw}/{POPULATION}/export.csv".removeprefix("s3://"), b"secret\n")
    stores = platform_stores(Settings(data_dir=tmp_path, raw_url=raw, _env_file=None))  # type: ignore[call-arg]
    (drop := tmp_path / "drop" / "psga").mkdir(parents=True)
    bucket = s3_bucket.removeprefix("s3://")
    for location in (f"s3:///{bucket}/raw/{POPULATION}", f"s3://{bucket.upper()}/raw/{POPULATION}"):
        with pytest.raises(UnsafeSourceLocation):
            newest_file(location, "*", tmp_path, drop, stores)
    with pytest.raises(UnsafeSourceLocation, match="no DATASHARE_DROP_URL is set"):
        newest_file(f"{s3_bucket}/exports", "*", tmp_path, drop, stores)  # a plain one: said clearly


# --- 8. file patterns name files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["../zsj/*", "..", "..*", "x\\y", "a/b"])
def test_a_file_pattern_names_files_in_the_folder_only(pattern: str, tmp_path: Path) -> None:
    for department in ("psga", "zsj"):
        (tmp_path / "drop" / department).mkdir(parents=True)
        (tmp_path / "drop" / department / f"{department}_1.csv").write_bytes(b"a\n1\n")
    with pytest.raises(UnsafeSourceLocation, match="file pattern"):
        newest_file("drop/psga", pattern, tmp_path, tmp_path / "drop")
    with pytest.raises(ValidationError, match="names files"):
        SourceSystemDeclaration(code="population", name="人口", location="drop/psga", file_pattern=pattern)


# --- 3. the manifest's read at parse time ends within seconds -------------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()
    for connection in held:
        connection.close()


def entries(manifest: str) -> list[str]:
    return [entry["item"] for entry in assets.read_pipelines(manifest)]


def unreachable(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    import s3fs

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    s3fs.S3FileSystem.clear_instance_cache()


def test_a_store_that_never_answers_leaves_the_parse_to_the_copy_within_seconds(
    s3_bucket: str, silent_endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{s3_bucket}/pipelines.json"
    write_manifest(url, [ENTRY])
    assert entries(url) == [POPULATION]  # read once: the copy kept
    unreachable(monkeypatch, silent_endpoint)
    read: dict[str, Any] = {}
    parse = threading.Thread(target=lambda: read.update(items=entries(url)), daemon=True)

    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger=assets.__name__):
        parse.start()
        parse.join(timeout=30)
    elapsed = time.monotonic() - began

    assert not parse.is_alive(), "the parse still waits on a store that never answers"
    assert read["items"] == [POPULATION] and elapsed < 10, elapsed
    assert "PIPELINE MANIFEST UNREACHABLE" in caplog.text


# --- 6. the manifest's copy is private, and never costs a good read -------------------------------------------------


def private_folder() -> Path:
    """Where the copies are to be kept: ``<temp>/datashare-<uid>`` (the test's own temporary folder, s3_bucket)."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"datashare-{os.getuid()}"


def copy_name(url: str) -> str:
    return f"manifest-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def _old_copy(url: str) -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / f"datashare-manifest-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def test_the_copy_is_kept_in_a_private_folder(s3_bucket: str) -> None:
    url = f"{s3_bucket}/pipelines.json"
    write_manifest(url, [ENTRY])
    assert entries(url) == [POPULATION]
    folder = private_folder()
    assert folder.lstat().st_mode & 0o777 == 0o700 and folder.lstat().st_uid == os.getuid()
    assert [path.name for path in folder.iterdir()] == [copy_name(url)]
    assert not list(folder.parent.glob("datashare-manifest-*")) and not list(folder.parent.glob(".datashare-*"))


def test_a_copy_that_cannot_be_written_does_not_hide_a_good_read(s3_bucket: str) -> None:
    url = f"{s3_bucket}/pipelines.json"
    write_manifest(url, [ENTRY])
    _old_copy(url).mkdir()  # where the copy was once kept: writing there fails
    private_folder().write_bytes(b"")  # and where it is kept now

    assert entries(url) == [POPULATION]


def test_a_planted_copy_is_never_read(s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's folder (here: a symlink to one) or a predictable name in the shared temporary folder."""
    url = f"{s3_bucket}/pipelines.json"
    planted = b'{"pipelines": [{"item": "PLANTED"}]}'
    _old_copy(url).write_bytes(planted)
    (elsewhere := tmp_path / "elsewhere").mkdir()
    (elsewhere / copy_name(url)).write_bytes(planted)
    private_folder().symlink_to(elsewhere)
    unreachable(monkeypatch, "http://127.0.0.1:9")  # nothing listens: the copy would serve

    assert entries(url) == []
