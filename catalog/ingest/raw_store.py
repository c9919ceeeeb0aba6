"""The raw store: every export fetched, kept unchanged under its SHA-256, in a local folder (default
``<data dir>/raw``) or on object storage (``DATASHARE_RAW_URL``, e.g. s3://datashare/raw), where every worker and
the API find it whatever machine kept it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import storage
from catalog.ingest.models import RawExport

RawRoot = Path | str  # a local folder, or an object-store URL


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_location(raw_dir: RawRoot, item_code: str, digest: str, file_name: str) -> str:
    """Where an export's bytes are kept: ``<raw store>/<item>/<sha256><suffix>``."""
    name = f"{digest}{Path(file_name).suffix.lower()}"
    if storage.is_url(raw_dir):
        return f"{str(raw_dir).rstrip('/')}/{item_code}/{name}"
    return str(Path(raw_dir) / item_code / name)


def record_raw_export(
    session: Session, raw_dir: RawRoot, item_id: int, item_code: str, data: bytes, file_name: str
) -> RawExport:
    """The raw export row for these bytes, added now if they are new. The file is written by ``store_raw_file``,
    which the caller runs (in the background, while the export is processed) before it commits."""
    digest = sha256_of(data)
    existing = session.scalar(select(RawExport).where(RawExport.item_id == item_id, RawExport.sha256 == digest))
    if existing is not None:
        return existing
    path = raw_location(raw_dir, item_code, digest, file_name)
    raw = RawExport(item_id=item_id, sha256=digest, file_name=file_name, size_bytes=len(data), stored_path=path)
    session.add(raw)
    session.flush()
    return raw


def store_raw_file(raw: RawExport, data: bytes) -> None:
    """Write the export's bytes where its row says, unless they are there already: atomic (an object is written
    whole by one PUT, or a multipart upload shown only once complete; a local file under a temporary name, synced,
    then renamed)."""
    if storage.is_url(raw.stored_path):
        storage.put_whole(raw.stored_path, data, keep_existing=True)  # the key is the content's digest
        return
    path = Path(raw.stored_path)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def read_raw_file(raw: RawExport) -> bytes:
    """The kept export's bytes, from wherever its row says."""
    if storage.is_url(raw.stored_path):
        return storage.read_bytes(raw.stored_path)
    return Path(raw.stored_path).read_bytes()
