"""Arrow tables that wait on disk: written to an unnamed temporary file as they come, read back whole once.

Ingestion judges some rules only at the end (every row's key for its uniqueness): what they need would otherwise
grow in memory with the export. The file has no name (it is gone when closed, or when the process ends) and only its
owner may read it, as the export it comes from is kept on this host already.
"""

from __future__ import annotations

import tempfile

import pyarrow as pa


class TableSpool:
    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by read_all (or with the process)
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pa.ipc.new_stream(self._file, table.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def read_all(self) -> pa.Table | None:
        """The tables added, as one (None if there were none); the file is closed."""
        try:
            if self._writer is None:
                return None
            self._writer.close()
            self._file.seek(0)
            return pa.ipc.open_stream(self._file).read_all()
        finally:
            self._file.close()
