"""Reaching a department's exports. Locations are URLs (fsspec), so workers on other machines can reach
them: ``file://`` and plain paths under the data folder here, object storage (s3://, gs://, abfs://) with the
matching fsspec package in production."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import fsspec

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
        files = [path for path in matches if filesystem.isfile(path)]
        if not files:
            return None
        newest = files[-1]
        return FetchedExport(name=newest.rsplit("/", 1)[-1], data=filesystem.cat_file(newest))
    except (OSError, ValueError, ImportError) as error:
        raise ExportNotReachable(f"cannot read the drop folder {url}: {error}") from None
