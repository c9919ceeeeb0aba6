"""The raw store: every export fetched, kept unchanged under its SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.ingest.models import RawExport


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_raw_export(
    session: Session, raw_dir: Path, item_id: int, item_code: str, data: bytes, file_name: str
) -> RawExport:
    """The raw export row for these bytes, added now if they are new. The file is written by ``store_raw_file``,
    which the caller runs (in the background, while the export is processed) before it commits."""
    digest = sha256_of(data)
    existing = session.scalar(select(RawExport).where(RawExport.item_id == item_id, RawExport.sha256 == digest))
    if existing is not None:
        return existing
    path = raw_dir / item_code / f"{digest}{Path(file_name).suffix.lower()}"
    raw = RawExport(item_id=item_id, sha256=digest, file_name=file_name, size_bytes=len(data), stored_path=str(path))
    session.add(raw)
    session.flush()
    return raw


def store_raw_file(raw: RawExport, data: bytes) -> None:
    """Write the export's bytes where its row says, unless they are there already: atomic and synced."""
    path = Path(raw.stored_path)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
