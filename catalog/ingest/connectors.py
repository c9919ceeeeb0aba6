"""Reaching a department's exports. Locations are URLs (fsspec), so workers on other machines can reach
them: ``file://`` and plain paths under the data folder here, object storage (s3://; gs://, abfs:// with the
matching fsspec package) in production, through catalog/storage.py and its credentials. Where a location may
point is checked first (``source_safety``).

Query results and API pages are streamed: rows arrive in chunks (a server-side cursor) and pages one by one, and
each is written out as JSON lines at once and sorted in bounded memory (``sorted_lines``); only the finished
export is held whole, as the ingestion path takes it."""

from __future__ import annotations

import os
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from catalog import logsafe, storage
from catalog.departments.schemas import PLATFORM_VARIABLE_PREFIXES
from catalog.errors import DomainError
from catalog.ingest.exports import ExportFile, blocks_of, export_at, spooled
from catalog.ingest.sorted_lines import RUN_BYTES, SortedLines
from catalog.ingest.source_safety import (
    CheckedTransport,
    check_inside_drop_area,
    checked_file_pattern,
    checked_file_url,
)


class ExportNotReachable(DomainError):
    code = "export_not_reachable"


FetchedExport = ExportFile  # a drop folder's file where it lies, or a spooled copy (an object, query results, pages)


def newest_file(
    location: str,
    pattern: str | None,
    data_dir: Path | str,
    drop_dir: Path | str,
    platform_stores: Collection[str] = (),
) -> FetchedExport | None:
    """The newest export in a drop folder, by file name (exports carry their date), or None if empty. A local
    folder and the file read must lie inside the drop area (``drop_dir``); with the drop area on object storage
    (``drop_dir`` a URL, see ``source_safety.checked_file_url``) the folder must lie in it. The folder is listed anew
    on every call (another machine may have added an export since), in one listing, not one request per file."""
    url = checked_file_url(location, data_dir, drop_dir, platform_stores)
    pattern = checked_file_pattern(pattern)
    try:
        filesystem, root = storage.filesystem(url)
        filesystem.invalidate_cache()
        found = filesystem.glob(f"{root.rstrip('/')}/{pattern}", detail=True)
        files = sorted(path for path, info in found.items() if _is_file(filesystem, path, info))
        if not files:
            return None
        newest = files[-1]
        if url.startswith("file://"):  # a symlink in the folder must not lead out of the drop area
            newest = str(check_inside_drop_area(newest, Path(drop_dir)))
        name = files[-1].rsplit("/", 1)[-1]
        if storage.is_local(filesystem):
            return export_at(Path(newest), name)  # read where it lies, a block at a time
        with filesystem.open(newest, "rb") as source:
            return spooled(blocks_of(source), name)
    except storage.failures() as error:
        raise ExportNotReachable(f"cannot read the drop folder {url}: {error}") from None


def _is_file(filesystem: Any, path: str, info: dict[str, Any]) -> bool:
    """A finished file, or a symlink to one (whose target is then checked to lie inside the drop area)."""
    if _in_progress(path):
        return False
    return bool(filesystem.isfile(path)) if info.get("islink") else info.get("type") == "file"


def _in_progress(path: str) -> bool:
    """Hidden and temporary files (or objects) are uploads still being written. (An object being uploaded in parts
    is not listed at all until its upload completes.)"""
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") or name.endswith((".tmp", ".part", ".partial", ".crdownload"))


# Each dialect's way to make the transaction read-only, sent as its first statement. SQLite has none: its
# connections are opened read-only instead. A dialect not listed here is not queried at all.
READ_ONLY_FIRST_STATEMENT = {
    "postgresql": "SET TRANSACTION READ ONLY",
    "oracle": "SET TRANSACTION READ ONLY",
    "mysql": "START TRANSACTION READ ONLY",
    "mariadb": "START TRANSACTION READ ONLY",
    "sqlite": None,
}
CHUNK_ROWS = 10_000


def query_database(
    location: str, query: str, *, chunk_rows: int = CHUNK_ROWS, run_bytes: int = RUN_BYTES
) -> FetchedExport:
    """Run a source system's query against its database (URL in the environment variable the location names)
    in a read-only transaction, reading ``chunk_rows`` rows at a time through a server-side cursor; the rows
    become a JSON-lines export, kept raw like any file."""
    variable = location.removeprefix("env:")
    if variable.startswith(PLATFORM_VARIABLE_PREFIXES):  # declared before the rule existed: refused all the same
        raise ExportNotReachable(f"{variable} is one of the platform's own variables, not a source database's")
    url = os.environ.get(variable)
    if not url:
        raise ExportNotReachable(f"the environment variable {variable} (the source database URL) is not set")
    engine = _read_only_engine(url)
    try:
        with engine.connect() as connection, SortedLines(run_bytes) as lines:
            if first := READ_ONLY_FIRST_STATEMENT[engine.dialect.name]:
                connection.exec_driver_sql(first)
            # A server-side cursor, read chunk by chunk (measured with SQLAlchemy 2.1 on psycopg: yield_per here still
            # brings every row into memory at once; max_row_buffer with sized partitions does not).
            connection.execution_options(stream_results=True, max_row_buffer=chunk_rows)
            for rows in connection.execute(text(query)).mappings().partitions(chunk_rows):
                lines.add_records(dict(row) for row in rows)
            return _export("query", lines)
    except SQLAlchemyError as error:
        reason = logsafe.redacted(str(getattr(error, "orig", None) or error).splitlines()[0])  # it may quote values
        raise ExportNotReachable(f"the source database query failed: {reason}") from None
    finally:
        engine.dispose()


def _read_only_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        engine = create_engine(_sqlite_read_only(url) if parsed.get_backend_name() == "sqlite" else url,
                               hide_parameters=True)  # fmt: skip
    except (SQLAlchemyError, ImportError, ValueError) as error:
        # Never the error's text: it may quote the URL, password included.
        raise ExportNotReachable(
            f"the source database URL in the environment cannot be used ({type(error).__name__})"
        ) from None
    if engine.dialect.name not in READ_ONLY_FIRST_STATEMENT:
        engine.dispose()
        raise ExportNotReachable(f"{engine.dialect.name} databases cannot be queried read-only: not supported")
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_query_only)
    return engine


def _sqlite_read_only(url: str) -> str:
    """A file database opened read-only (mode=ro), so it cannot be written, nor created when it is missing."""
    parsed = make_url(url)
    if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
        return url
    return parsed.set(database=f"file:{parsed.database}", query={**parsed.query, "mode": "ro", "uri": "true"}
                      ).render_as_string(hide_password=False)  # fmt: skip


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")  # also for URLs given as file: URIs already


MAX_PAGES = 100_000


def fetch_pages(
    location: str, *, allowed_hosts: Collection[str] = (), token: str | None = None, run_bytes: int = RUN_BYTES
) -> FetchedExport:
    """Read an HTTP JSON endpoint: a JSON array, or pages of ``{"items": [...], "next": URL or null}`` followed
    to the end, each page's items written out as it comes. ``token`` is sent as ``Authorization: Bearer`` to the
    location's own origin only, never to another host a ``next`` link names. The records become a JSON-lines
    export, kept raw like any file."""
    url: str | None = location
    # No proxies from the environment: they would connect past the address checks.
    transport = CheckedTransport(allowed_hosts)
    try:
        with httpx.Client(timeout=60, transport=transport, trust_env=False) as client, SortedLines(run_bytes) as lines:
            for _ in range(MAX_PAGES):
                if url is None:
                    return _export("http", lines)
                response = client.get(url, headers=_credential(location, url, token))
                response.raise_for_status()
                page = response.json()
                if isinstance(page, list):
                    lines.add_records(page)
                    return _export("http", lines)
                if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                    raise ExportNotReachable(f"{url} returned neither a JSON array nor a page of items and next")
                lines.add_records(page["items"])
                url = urljoin(url, page["next"]) if page.get("next") else None
            raise ExportNotReachable(f"{location} has more than {MAX_PAGES} pages")
    except httpx.HTTPStatusError as error:  # its text quotes the URL, which may carry a key in its query
        raise ExportNotReachable(f"the HTTP source answered {error.response.status_code}") from None
    except httpx.HTTPError as error:
        reason = logsafe.redacted(f"{type(error).__name__}: {error}")
        raise ExportNotReachable(f"the HTTP source failed: {reason}") from None
    except ValueError as error:  # a body that is not JSON
        raise ExportNotReachable(f"the HTTP source did not return JSON: {error}") from None


def http_token_variable(department: str, source_system: str) -> str:
    """The environment variable holding an HTTP source's bearer token: ``<DEPARTMENT>_<SOURCE>_TOKEN``."""
    return f"{department}_{source_system}_TOKEN".upper().replace("-", "_")


def _credential(location: str, url: str, token: str | None) -> dict[str, str]:
    declared, asked = urlsplit(location), urlsplit(url)
    same_origin = (declared.scheme, declared.netloc.lower()) == (asked.scheme, asked.netloc.lower())
    return {"Authorization": f"Bearer {token}"} if token and same_origin else {}


def _export(kind: str, lines: SortedLines) -> FetchedExport:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return spooled(lines.blocks(), f"{kind}_{stamp}.jsonl")
