"""Every failing row of a batch: ``row,field,rule`` lines, gzip-compressed, in the reports store beside the raw store.

A batch's JSON report keeps each check's counts and its first rows and (masked) examples; this file keeps every
(row, check) pair however many there are, without values. It is written while the batch is validated, in the
order the rows were checked (chunk by chunk, check by check), and is synced and moved into place before the
batch's record commits, which names it with its SHA-256. A million failing rows take a few megabytes.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import NotFound

HEADER = ("row", "field", "rule")
READ_SIZE = 1 << 20


class FailingRowsNotKept(NotFound):
    """The batch has no file of failing rows, or it is not the file its record names."""

    code = "failing_rows_not_kept"


@dataclass(frozen=True)
class StoredFailingRows:
    path: Path
    sha256: str
    lines: int


def failing_rows_path(reports_dir: Path, item_code: str, batch_id: int) -> Path:
    return reports_dir / item_code / f"batch-{batch_id}-failing-rows.csv.gz"


class FailingRowsFile:
    """Collects a batch's failing rows into a partial file; ``finish`` moves it into place (if any row failed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._partial.parent.mkdir(parents=True, exist_ok=True)
        self._raw = self._partial.open("wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)  # the same rows give the same bytes
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(HEADER)
        self.lines = 0

    def add(self, field: str, rule: str, rows: Iterable[int]) -> None:
        for row in rows:
            self._csv.writerow((row, field, rule))
            self.lines += 1

    def finish(self) -> StoredFailingRows | None:
        """Synced and in place; None (and no file) when no row failed."""
        self._close()
        if not self.lines:
            self._partial.unlink(missing_ok=True)
            return None
        os.replace(self._partial, self.path)
        return StoredFailingRows(self.path, _sha256_of(self.path), self.lines)

    def discard(self) -> None:
        self._close()
        self._partial.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._raw.closed:
            return
        self._text.close()  # closes the gzip stream (its trailer) but not the file under it
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()


def read_failing_rows(path: str | None, sha256: str | None) -> Iterator[bytes]:
    """The CSV text of a batch's failing rows (decompressed, in blocks), after checking it is the recorded file."""
    if path is None or sha256 is None:
        raise FailingRowsNotKept(
            "no row of this batch failed a rule (or it was recorded before failing rows were kept)"
        )
    stored = Path(path)
    if not stored.exists() or _sha256_of(stored) != sha256:
        raise FailingRowsNotKept(f"{stored} is missing or is not the file this batch recorded")
    return _blocks(stored)


def _blocks(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as text:
        while block := text.read(READ_SIZE):
            yield block


def _sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
