"""The raw store: every export fetched, kept unchanged under its SHA-256, in a local folder (default
``<data dir>/raw``) or on object storage (``DATASHARE_RAW_URL``, e.g. s3://datashare/raw), where every worker and
the API find it whatever machine kept it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import storage
from catalog.ingest.exports import ExportFile, blocks_of, spooled
from catalog.ingest.models import RawExport

RawRoot = Path | str  # a local folder, or an object-store URL


def raw_location(raw_dir: RawRoot, item_code: str, digest: str, file_name: str) -> str:
    """Where an export's bytes are kept: ``<raw store>/<item>/<sha256><suffix>``."""
    name = f"{digest}{Path(file_name).suffix.lower()}"
    if storage.is_url(raw_dir):
        return f"{str(raw_dir).rstrip('/')}/{item_code}/{name}"
    return str(Path(raw_dir) / item_code / name)


def record_raw_export(
    session: Session, raw_dir: RawRoot, item_id: int, item_code: str, export: ExportFile
) -> RawExport:
    """The raw export row for this export's bytes, added now if they are new. The file is written by
    ``store_raw_file``, which the caller runs (in the background, while the export is processed) before it commits."""
    digest = export.sha256
    existing = session.scalar(select(RawExport).where(RawExport.item_id == item_id, RawExport.sha256 == digest))
    if existing is not None:
        return existing
    path = raw_location(raw_dir, item_code, digest, export.name)
    raw = RawExport(item_id=item_id, sha256=digest, file_name=export.name, size_bytes=export.size, stored_path=path)
    session.add(raw)
    session.flush()
    return raw


def store_raw_file(raw: RawExport, export: ExportFile) -> None:
    """Copy the export where its row says, a block at a time, unless it is there already: atomic (an object is written
    whole by a multipart upload shown only once complete; a local file under a temporary name, synced, then
    renamed)."""
    if storage.is_url(raw.stored_path):
        store, key = storage.filesystem(raw.stored_path)
        if not store.exists(key):  # the key is the content's digest
            with export.open() as source:
                storage.write_whole(store, key, blocks_of(source))
        return
    path = Path(raw.stored_path)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        shutil.copyfile(export.path, handle.name)  # by the kernel (sendfile): no block passes through Python
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def raw_export_file(raw: RawExport, spool: Path | None = None) -> ExportFile:
    """The kept export as a file to read: where it lies, or (from object storage) a spooled copy in ``spool``, which
    the caller discards."""
    if not storage.is_url(raw.stored_path):
        return ExportFile(Path(raw.stored_path), raw.file_name, raw.sha256, raw.size_bytes)
    store, key = storage.filesystem(raw.stored_path)
    with store.open(key, "rb") as source:
        return spooled(blocks_of(source), raw.file_name, spool)
