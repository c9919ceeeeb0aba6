"""An export file that Arrow's streaming CSV reader may read only a few blocks ahead of the batches taken from it.

Arrow's reader reads blocks in a background thread into a queue of up to 32 (MakeBackgroundGenerator's), as fast
as the disk gives them: with 8 MB blocks it held 350 MB of a large export at once, and all of an export up to that
size, whatever the consumer had taken. Reading through a ``PacedFile`` keeps at most ``ahead`` blocks waiting, so
that memory does not grow with the export. While the consumer waits (for the reader to open, or for a batch) and
Arrow needs more than the allowance (a first row longer than a block, say), the reader reads on, a block every
STALLED_SECONDS: the allowance never stalls it. The blocks are read into memory of Arrow's pool: the bytes Python
would make of them come from the C heap, which blocks of megabytes, read and freed one after another, leave ever
larger.

Arrow's thread runs this file's Python code, so it must not be left inside it: when the batches stop (all read, or
the consumer gave up), the file is closed (a read after that is the end of the file) and the reader is run to its
end before the batches' generator returns.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa

STALLED_SECONDS = 0.05


class PacedFile(io.RawIOBase):
    def __init__(self, file: BinaryIO, ahead: int) -> None:
        super().__init__()
        self._file = file
        self._ahead = ahead
        self._reads = self._taken = 0
        self._reading = 0  # reads under way (outside the lock)
        self._wanted = False  # the consumer is waiting
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
                    break  # the consumer waits on and on: never starve it
            if self.closed:
                return 0
            self._reads += 1
            self._reading += 1
        try:
            return self._file.readinto(buffer)  # type: ignore[attr-defined, no-any-return]  # opened "rb", or BytesIO
        finally:
            with self._turn:
                self._reading -= 1
                self._turn.notify_all()

    def batches(self, open_reader: Callable[[PacedFile], pa.RecordBatchReader]) -> Iterator[pa.RecordBatch]:
        """The batches of the reader opened on this file, each taken one letting the next block be read."""
        self._set_wanted(True)
        try:
            reader = open_reader(self)  # Arrow parses the first block as it opens
        finally:
            self._set_wanted(False)
        try:
            while True:
                self._set_wanted(True)
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                finally:
                    self._set_wanted(False, taken=1)
                yield batch
        finally:
            self.close()
            _run_to_end(reader)

    def _set_wanted(self, wanted: bool, taken: int = 0) -> None:
        with self._turn:
            self._wanted = wanted
            self._taken += taken
            self._turn.notify_all()

    def close(self) -> None:
        """Closes the file once no read is under way; a read waiting for its turn, or coming later, reads nothing."""
        with self._turn:
            if self.closed:
                return
            super().close()
            self._turn.notify_all()
            self._turn.wait_for(lambda: self._reading == 0)
        self._file.close()


def _run_to_end(reader: pa.RecordBatchReader) -> None:
    """Lets Arrow's reading end (the file reads as ended now), so that none of its threads is left in this file."""
    try:
        while True:
            reader.read_next_batch()
    except (StopIteration, pa.ArrowException):
        pass
