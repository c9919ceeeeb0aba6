"""Records as sorted JSON lines in bounded memory: an external merge sort.

Sorted keys and sorted lines make the same data in another order the same export (idempotent re-pulls). Lines
are kept as UTF-8 bytes, whose order is the order of their code points, so the result is byte for byte what
sorting the strings gives; JSON escapes every control character, so no line holds one below the newline and a
newline-terminated line sorts as the bare line does. Up to ``run_bytes`` of lines are sorted in memory; each
full run is spilled to a temporary file, and the runs are merged (``heapq.merge``) into the result at the end.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

RUN_BYTES = 32 * 1024 * 1024
BLOCK_BYTES = 1 << 20


def json_line(record: object) -> bytes:
    return json.dumps(record, ensure_ascii=False, default=str, sort_keys=True).encode() + b"\n"


class SortedLines:
    """Use as a context manager: the temporary runs are removed on leaving it."""

    def __init__(self, run_bytes: int = RUN_BYTES) -> None:
        self._run_bytes = run_bytes
        self._folder = tempfile.TemporaryDirectory(prefix="datashare-sort-")
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._runs: list[Path] = []

    def __enter__(self) -> SortedLines:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._buffer = []
        self._folder.cleanup()

    def add_records(self, records: Iterable[object]) -> None:
        for record in records:
            line = json_line(record)
            self._buffer.append(line)
            self._buffered += len(line)
            if self._buffered >= self._run_bytes:
                self._spill()

    def read(self) -> bytes:
        """Every line added, sorted (a single newline when there are none, as an empty export has always been)."""
        return b"".join(self.blocks())

    def blocks(self) -> Iterator[bytes]:
        """``read()`` in blocks of about ``BLOCK_BYTES``: the runs merged as they are consumed, never held whole."""
        if not self._runs:
            self._buffer.sort()
            yield b"".join(self._buffer) or b"\n"
            return
        self._spill()
        with ExitStack() as stack:
            runs = [stack.enter_context(run.open("rb")) for run in self._runs]
            block: list[bytes] = []
            size = 0
            for line in heapq.merge(*runs):
                block.append(line)
                size += len(line)
                if size >= BLOCK_BYTES:
                    yield b"".join(block)
                    block, size = [], 0
            yield b"".join(block)

    def _spill(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        run = Path(self._folder.name) / f"run-{len(self._runs):05d}.jsonl"
        with run.open("wb") as out:
            out.writelines(self._buffer)
        self._runs.append(run)
        self._buffer, self._buffered = [], 0
