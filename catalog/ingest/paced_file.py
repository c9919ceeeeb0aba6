"""An export file that Arrow's streaming CSV reader may read only a few blocks ahead of the batches taken from it.

Arrow's reader reads blocks in a background thread into a queue of up to 32 (MakeBackgroundGenerator's), as fast
as the disk gives them: with 8 MB blocks it held 350 MB of a large export at once, and all of an export up to that
size, whatever the consumer had taken. Reading through a ``PacedFile`` keeps at most ``ahead`` blocks waiting, so
that memory does not grow with the export. A row may straddle two blocks (Arrow refuses a longer one), so two blocks
ahead always complete a batch; should a consumer ever be left waiting for one, the reader reads on, a block every
STALLED_SECONDS. The blocks are read into memory of Arrow's pool: the
bytes Python would make of them come from the C heap, which blocks of megabytes, read and freed one after another,
leave ever larger.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa

STALLED_SECONDS = 0.05


class PacedFile(io.RawIOBase):
    def __init__(self, file: BinaryIO, ahead: int) -> None:
        super().__init__()
        self._file = file
        self._ahead = ahead
        self._reads = self._taken = 0
        self._wanted = False  # the consumer is waiting for a batch
        self._turn = threading.Condition()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> Any:
        """A block, in memory of Arrow's pool."""
        if size < 0:
            return super().read(size)
        block = pa.allocate_buffer(size, resizable=True)
        block.resize(self.readinto(memoryview(block)))  # type: ignore[arg-type]
        return block

    def readinto(self, buffer: Any) -> int:
        with self._turn:
            while not (self.closed or self._reads - self._taken < self._ahead):
                if not self._turn.wait(timeout=STALLED_SECONDS) and self._wanted:
                    break  # the consumer waits on and on for a batch: never starve it
            self._reads += 1
        return self._file.readinto(buffer)  # type: ignore[attr-defined]  # a file opened "rb", or BytesIO

    def batches(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        """The reader's batches, each taken one letting the next block be read."""
        while True:
            self._set_wanted(True)
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            finally:
                self._set_wanted(False, taken=1)
            yield batch

    def _set_wanted(self, wanted: bool, taken: int = 0) -> None:
        with self._turn:
            self._wanted = wanted
            self._taken += taken
            self._turn.notify_all()

    def close(self) -> None:
        """Closes the file, first letting a waiting read go on (to fail): the reader's thread is never left behind."""
        with self._turn:
            super().close()
            self._turn.notify_all()
        self._file.close()
