"""Reaching a department's exports. Locations are URLs (fsspec), so workers on other machines can reach
them: ``file://`` and plain paths under the data folder here, object storage (s3://, gs://, abfs://) with the
matching fsspec package in production."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import fsspec
import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from catalog.errors import DomainError


class ExportNotReachable(DomainError):
    code = "export_not_reachable"


@dataclass(frozen=True)
class FetchedExport:
    name: str
    data: bytes


def location_url(location: str, data_dir: Path) -> str:
    """A declared location as a URL: relative paths are folders under the data folder."""
    return location if "://" in location else (data_dir / location).resolve().as_uri()


def newest_file(location: str, pattern: str | None, data_dir: Path) -> FetchedExport | None:
    """The newest export in a drop folder, by file name (exports carry their date), or None if empty."""
    url = location_url(location, data_dir)
    try:
        filesystem, root = fsspec.core.url_to_fs(url)
        matches = sorted(filesystem.glob(f"{root.rstrip('/')}/{pattern or '*'}"))
        files = [path for path in matches if filesystem.isfile(path) and not _in_progress(path)]
        if not files:
            return None
        newest = files[-1]
        return FetchedExport(name=newest.rsplit("/", 1)[-1], data=filesystem.cat_file(newest))
    except (OSError, ValueError, ImportError) as error:
        raise ExportNotReachable(f"cannot read the drop folder {url}: {error}") from None


def _in_progress(path: str) -> bool:
    """Hidden and temporary files are uploads still being written."""
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") or name.endswith((".tmp", ".part", ".partial", ".crdownload"))


def query_database(location: str, query: str) -> FetchedExport:
    """Run a source system's query against its database (URL in the environment variable the location names)
    in a read-only transaction; the rows become a JSON-lines export, kept raw like any file."""
    variable = location.removeprefix("env:")
    url = os.environ.get(variable)
    if not url:
        raise ExportNotReachable(f"the environment variable {variable} (the source database URL) is not set")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = connection.execute(text(query))
            records: list[object] = [dict(row) for row in result.mappings()]
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise ExportNotReachable(f"the source database query failed: {reason}") from None
    finally:
        engine.dispose()
    return _json_lines_export("query", records)


MAX_PAGES = 100_000


def fetch_pages(location: str) -> FetchedExport:
    """Read an HTTP JSON endpoint: a JSON array, or pages of ``{"items": [...], "next": URL or null}`` followed
    to the end. The records become a JSON-lines export, kept raw like any file."""
    records: list[object] = []
    url: str | None = location
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                response = client.get(url)
                response.raise_for_status()
                page = response.json()
                if isinstance(page, list):
                    records.extend(page)
                    break
                if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                    raise ExportNotReachable(f"{url} returned neither a JSON array nor a page of items and next")
                records.extend(page["items"])
                url = urljoin(url, page["next"]) if page.get("next") else None
            else:
                raise ExportNotReachable(f"{location} has more than {MAX_PAGES} pages")
    except httpx.HTTPError as error:
        raise ExportNotReachable(f"the HTTP source failed: {error}") from None
    except ValueError as error:  # a body that is not JSON
        raise ExportNotReachable(f"the HTTP source did not return JSON: {error}") from None
    return _json_lines_export("http", records)


def _json_lines_export(kind: str, records: list[object]) -> FetchedExport:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # Sorted keys and lines: the same data in another order is the same export (idempotent re-pulls).
    lines = sorted(json.dumps(record, ensure_ascii=False, default=str, sort_keys=True) for record in records)
    return FetchedExport(name=f"{kind}_{stamp}.jsonl", data=("\n".join(lines) + "\n").encode())
