"""Arrow's CSV reader reads an export only a few blocks ahead of what ingestion has taken (it would read 32 ahead on
its own), rows across block ends still read, and a read left unfinished lets go of its thread."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.ingest import tables
from catalog.ingest.decode import DecodedFile
from catalog.ingest.paced_file import PacedFile

BLOCK = 4096


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "CSV_BLOCK_BYTES", BLOCK)


def export(folder: Path, rows: int, long_cell: int = 0) -> Path:
    path = folder / "export.csv"
    lines = [f"{n},{'x' * long_cell if n == 2 else f'value {n:06d}'}" for n in range(1, rows + 1)]
    path.write_text("编号,说明\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


class CountingPacedFile(PacedFile):
    """Remembers how far the reads ever got ahead of the batches taken."""

    most_ahead = 0

    def readinto(self, buffer: object) -> int:
        read = super().readinto(buffer)
        CountingPacedFile.most_ahead = max(CountingPacedFile.most_ahead, self._reads - self._taken)
        return read


def test_the_reader_waits_while_ingestion_works_on_a_chunk(
    small_blocks: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = export(tmp_path, 5_000)  # about 25 blocks
    monkeypatch.setattr(tables, "PacedFile", CountingPacedFile)
    CountingPacedFile.most_ahead = 0
    rows = 0
    for chunk in tables.read_csv(DecodedFile(path, 0, "utf-8", transcoded=False)).chunks:
        time.sleep(0.02)  # ingestion's work on the chunk: the reader has time to run ahead, if it may
        rows += chunk.size
    assert rows == 5_000
    assert CountingPacedFile.most_ahead <= tables.CSV_BLOCKS_AHEAD + 1  # the read that found the file's end


def test_rows_across_block_ends_are_read_while_the_reader_is_held_back(small_blocks: None, tmp_path: Path) -> None:
    """A row may straddle two blocks (Arrow refuses a longer one): the blocks allowed ahead always complete it."""
    path = export(tmp_path, 3_000, long_cell=BLOCK - 100)
    rows = []
    for chunk in tables.read_csv(DecodedFile(path, 0, "utf-8", transcoded=False)).chunks:
        time.sleep(0.01)
        rows += pa.array(chunk.columns[1]).to_pylist()
    assert len(rows) == 3_000
    assert rows[1] == "x" * (BLOCK - 100)
    assert rows[-1] == "value 003000"


def test_a_read_left_unfinished_lets_go_of_the_reader_thread(small_blocks: None, tmp_path: Path) -> None:
    path = export(tmp_path, 5_000)
    threads = threading.active_count()
    chunks = tables.read_csv(DecodedFile(path, 0, "utf-8", transcoded=False)).chunks
    assert isinstance(chunks, Generator)
    next(chunks)
    chunks.close()  # a failed ingestion stops reading: the file closes, and a read waiting on it goes on (to fail)
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads + 8  # Arrow's own pools may keep idle threads: none is stuck here


def test_blocks_are_read_into_arrow_memory(tmp_path: Path) -> None:
    """The blocks come from Arrow's pool, not the C heap (where megabyte blocks, freed one after another, left the
    heap ever larger: 300 MB of it for a 5,000,000-row export, 124 MB for 1,000,000)."""
    with PacedFile(io.BytesIO(b"a,b\n1,2\n"), ahead=2) as paced:
        block = paced.read(1024)
        assert isinstance(block, pa.Buffer)
        assert block.to_pybytes() == b"a,b\n1,2\n"
        assert paced.read(1024).size == 0


def test_a_first_row_longer_than_the_blocks_allowed_ahead_opens(small_blocks: None, tmp_path: Path) -> None:
    """Arrow parses the first rows as the reader opens, beyond the blocks allowed ahead when the first row is long:
    the reader reads on meanwhile (it waited for a batch to be taken, for ever)."""
    path = tmp_path / "long_first.csv"
    path.write_text("a,b\n1," + "x" * int(BLOCK * 1.5) + "\n" + "".join(f"{n},y\n" for n in range(2, 2_002)))
    rows = [cell for chunk in tables.read_csv(DecodedFile(path, 0, "utf-8", False)).chunks for cell in chunk.columns[0]]
    assert len(rows) == 2_001


def test_a_reading_stopped_midway_leaves_no_thread_in_the_file(small_blocks: None, tmp_path: Path) -> None:
    """When the consumer stops, the file is closed and Arrow's reading run to its end: no thread of Arrow's is left
    inside the file's Python code (at the interpreter's exit that aborted the process)."""
    path = export(tmp_path, 5_000)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from catalog.ingest import tables\n"
        "from catalog.ingest.decode import DecodedFile\n"
        "tables.CSV_BLOCK_BYTES = 4096\n"
        "chunks = tables.read_csv(DecodedFile(Path(sys.argv[1]), 0, 'utf-8', False)).chunks\n"
        "next(chunks); next(chunks)\n"
        "chunks.close()\n"
    )
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-500:]
