"""A file-drop delivery in a local folder and under an s3:// root (a real S3-compatible server): the file appears whole
under its final name or not at all, whatever fails while it is written, and nothing is left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog import storage
from catalog.push import writers
from tests.object_store import ObjectStore, pending_uploads

PART = b"row,name\n" + b"1,x\n" * (2 << 20)  # 8 MiB: above s3fs's block size, so an upload in parts


@pytest.fixture(params=["local", "s3"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A department's file-drop folder, as a target's URL names it."""
    if request.param == "local":
        return f"file://{tmp_path / 'outbound' / 'zsj'}"
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"{bucket}/outbound/zsj"


def chunks_then(failure: Exception | None) -> Any:
    def chunks(_grant: Any, _batches: Any) -> Iterator[bytes]:
        yield PART
        yield PART
        if failure is not None:
            raise failure
        yield b"2,y\n"

    return chunks


def everything_in(folder: str) -> dict[str, bytes]:
    filesystem, root = storage.filesystem(folder)
    if not filesystem.exists(root):
        return {}
    return {path.rsplit("/", 1)[-1]: bytes(filesystem.cat_file(path)) for path in filesystem.find(root)}


def test_a_file_drop_is_written_whole(folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writers, "csv_chunks", chunks_then(None))

    url = writers.write_file(folder, "PSGA-RK-0001-v1", None, iter([]), "csv")  # type: ignore[arg-type]

    assert url == f"{folder}/PSGA-RK-0001-v1.csv"
    assert everything_in(folder) == {"PSGA-RK-0001-v1.csv": PART + PART + b"2,y\n"}


def test_a_file_drop_that_fails_midway_leaves_nothing(
    folder: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setattr(writers, "csv_chunks", chunks_then(RuntimeError("the database went away")))

    with pytest.raises(RuntimeError, match="went away"):
        writers.write_file(folder, "PSGA-RK-0001-v1", None, iter([]), "csv")  # type: ignore[arg-type]

    assert everything_in(folder) == {}  # no final file, no partial one
    if storage.is_url(folder):
        store: ObjectStore = request.getfixturevalue("object_store")
        assert pending_uploads(store, folder.split("/outbound", 1)[0]) == []  # the upload in parts was aborted
