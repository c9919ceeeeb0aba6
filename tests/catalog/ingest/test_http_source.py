"""A source system reached as an HTTP JSON endpoint with paging, served by a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from catalog.ingest.connectors import ExportNotReachable, fetch_pages
from tests.catalog.helpers import pull_complaints_from

PAGE_SIZE = 150


LOCAL = ["127.0.0.1"]  # the test server's host, allowed as an operator would (loopback is refused by default)


@pytest.fixture
def complaints_api(samples_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """/cases?page=N answers {"items": [...150 records], "next": "/cases?page=N+1" or null}; /broken answers 500."""
    monkeypatch.setenv("DATASHARE_SOURCE_ALLOWED_HOSTS", json.dumps(LOCAL))
    records = json.loads((samples_dir / "zsj_complaints_20261120.json").read_text(encoding="utf-8"))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            if parsed.path != "/cases":
                self.send_error(500)
                return
            page = int(parse_qs(parsed.query).get("page", ["1"])[0])
            items = records[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            following = f"/cases?page={page + 1}" if page * PAGE_SIZE < len(records) else None
            body = json.dumps({"items": items, "next": following}, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_page_is_read(complaints_api: str, samples_dir: Path) -> None:
    export = fetch_pages(f"{complaints_api}/cases", allowed_hosts=LOCAL)
    lines = export.data.decode().splitlines()
    assert len(lines) == 400 and export.name.endswith(".jsonl")
    records = json.loads((samples_dir / "zsj_complaints_20261120.json").read_text(encoding="utf-8"))
    assert sorted(json.loads(line)["事件编号"] for line in lines) == sorted(record["事件编号"] for record in records)
    again = fetch_pages(f"{complaints_api}/cases", allowed_hosts=LOCAL)
    assert again.data == export.data  # the same data is the same export


def test_an_http_source_publishes_through_the_same_path(
    backend: str, database_factory: Any, complaints_api: str, tmp_path: Path
) -> None:
    outcome = pull_complaints_from(
        {"access": "http", "location": f"{complaints_api}/cases"}, database_factory(backend), tmp_path
    )
    assert outcome is not None and (outcome.outcome, outcome.rows_accepted) == ("published", 400)


def test_a_failing_endpoint_is_a_clear_error(complaints_api: str) -> None:
    with pytest.raises(ExportNotReachable, match="the HTTP source answered 500") as failed:
        fetch_pages(f"{complaints_api}/broken?key=s3cret-in-the-query", allowed_hosts=LOCAL)
    assert "s3cret" not in failed.value.message  # the message ends up in logs: never the URL's query
