"""An export as the ingestion path takes it: a file on this machine's disk, hashed as it is first read and then read a
block at a time, so that an export of any size is never held in memory whole.

A drop folder's export is read where it lies; an object (s3://), query results, API pages and bytes handed over
(an upload, a test) are spooled to a file of the platform's own first, which is removed once the export is ingested
(its raw copy is kept in the raw store)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class ExportFile:
    path: Path
    name: str  # as the department's system named it
    sha256: str
    size: int
    owned: bool = False  # a spooled copy of the platform's, removed by ``discard``

    @property
    def data(self) -> bytes:
        """The whole export (for small exports and tests; the ingestion path reads it in blocks)."""
        return self.path.read_bytes()

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def discard(self) -> None:
        if self.owned:
            self.path.unlink(missing_ok=True)


def export_at(path: Path, name: str | None = None) -> ExportFile:
    """A file read where it lies (a drop folder's, a command line's): hashed a block at a time."""
    with path.open("rb") as source:
        digest = hashlib.file_digest(source, "sha256").hexdigest()
        size = source.tell()
    return ExportFile(path, name or path.name, digest, size)


def spooled(blocks: Iterable[bytes], name: str, folder: Path | None = None) -> ExportFile:
    """The blocks written to a new file of the platform's in ``folder`` (the system's temporary folder by default),
    hashed on the way; the file is removed again if writing fails."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    descriptor, written = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=Path(name).suffix.lower())
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(descriptor, "wb") as out:
            for block in blocks:
                digest.update(block)
                size += len(block)
                out.write(block)
    except BaseException:
        Path(written).unlink(missing_ok=True)
        raise
    return ExportFile(Path(written), name, digest.hexdigest(), size, owned=True)


def spooled_bytes(data: bytes, name: str, folder: Path | None = None) -> ExportFile:
    return spooled([data], name, folder)


def blocks_of(source: BinaryIO) -> Iterator[bytes]:
    while block := source.read(BLOCK_BYTES):
        yield block


@contextmanager
def discarded_after(export: ExportFile) -> Iterator[ExportFile]:
    """The export, its spooled copy (if any) removed when the block ends, whatever happened."""
    try:
        yield export
    finally:
        export.discard()
