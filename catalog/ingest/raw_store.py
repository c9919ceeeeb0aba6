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


def keep_raw_export(
    session: Session, raw_dir: Path, item_id: int, item_code: str, data: bytes, file_name: str
) -> RawExport:
    """The stored export with these bytes, stored now if it is new. Writing is atomic (temp file, rename)."""
    digest = sha256_of(data)
    existing = session.scalar(select(RawExport).where(RawExport.item_id == item_id, RawExport.sha256 == digest))
    if existing is not None:
        return existing
    folder = raw_dir / item_code
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}{Path(file_name).suffix.lower()}"
    if not path.exists():
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    raw = RawExport(item_id=item_id, sha256=digest, file_name=file_name, size_bytes=len(data), stored_path=str(path))
    session.add(raw)
    session.flush()
    return raw
