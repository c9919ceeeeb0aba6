"""Query results and API pages are streamed (issue 12): memory holds the finished export and a bounded working set,
not every row several times over; the export is the same sorted JSON lines whatever the order and the chunking."""

from __future__ import annotations

import json
import random
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import create_engine, text

from catalog.ingest.connectors import FetchedExport, fetch_pages, query_database
from catalog.ingest.sorted_lines import SortedLines, json_line
from tests.conftest import create_postgres_database, drop_postgres_database

ROWS = 200_000
RUN_BYTES = 1 << 20  # a run per megabyte: a dozen or more runs to merge
WORKING_SET = 8 << 20  # a run being filled, a chunk of rows or a page, buffers: a few megabytes whatever the rows


def record(number: int) -> dict[str, Any]:
    return {"case_no": f"C{number:07d}", "state": "open", "n": number, "note": f"诉求说明 {number} " + "x" * 40}


def peak_memory(fetch: Callable[[], FetchedExport]) -> tuple[FetchedExport, int]:
    tracemalloc.start()
    try:
        export = fetch()
        return export, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def big_department(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A department database of 200,000 cases, inserted in shuffled order."""
    url = f"sqlite:///{tmp_path / 'department.db'}" if request.param == "sqlite" else create_postgres_database("dept")
    numbers = list(range(ROWS))
    random.Random(7).shuffle(numbers)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE cases (case_no text, state text, n integer, note text)"))
        connection.execute(text("INSERT INTO cases VALUES (:case_no, :state, :n, :note)"), [record(n) for n in numbers])
    engine.dispose()
    monkeypatch.setenv("DEPT_DB", url)
    yield url
    if request.param == "postgresql":
        drop_postgres_database(url)


def test_a_query_streams_in_bounded_memory(big_department: str) -> None:
    export, peak = peak_memory(lambda: query_database("env:DEPT_DB", "SELECT * FROM cases", chunk_rows=1_000,
                                                      run_bytes=RUN_BYTES))  # fmt: skip

    expected = b"".join(sorted(json_line(record(n)) for n in range(ROWS)))
    assert export.data == expected  # sorted lines, whatever the order of the rows and however many runs
    # The finished export (about 25 MB) and a working set; holding every row as a dict and as a string before
    # joining them took twelve times the export.
    assert peak - len(export.data) < WORKING_SET, (peak, len(export.data))


def test_sorting_in_runs_gives_the_same_export_as_sorting_at_once() -> None:
    records = [record(n) for n in random.Random(3).sample(range(50_000), 50_000)]
    with SortedLines(run_bytes=64 * 1024) as in_runs, SortedLines() as at_once:
        in_runs.add_records(records)
        at_once.add_records(reversed(records))
        assert in_runs.read() == at_once.read() == b"".join(sorted(json_line(r) for r in records))
    with SortedLines() as empty:
        assert empty.read() == b"\n"  # an empty export, as it always was


@pytest.fixture
def paged_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """100,000 records in pages of 1,000 (newest first), from a local server."""
    page_size, total = 1_000, 100_000

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = int(parse_qs(urlparse(self.path).query).get("page", ["0"])[0])
            items = [record(total - n) for n in range(page * page_size, (page + 1) * page_size)]
            following = f"/cases?page={page + 1}" if (page + 1) * page_size < total else None
            body = json.dumps({"items": items, "next": following}, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cases"
    server.shutdown()
    server.server_close()


def test_pages_stream_in_bounded_memory(paged_api: str) -> None:
    export, peak = peak_memory(lambda: fetch_pages(paged_api, allowed_hosts=["127.0.0.1"], run_bytes=RUN_BYTES))

    assert export.data == b"".join(sorted(json_line(record(n)) for n in range(1, 100_001)))
    assert peak - len(export.data) < WORKING_SET, (peak, len(export.data))
