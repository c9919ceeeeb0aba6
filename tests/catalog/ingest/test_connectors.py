from __future__ import annotations

import pytest
from pydantic import ValidationError

from catalog.departments.schemas import SourceSystemDeclaration
from catalog.ingest.connectors import newest_file
from tests.object_store import DropArea


def test_the_newest_finished_export_is_taken(drop_area: DropArea) -> None:
    """On a local folder and on object storage alike: by name, uploads still under a temporary name left alone."""
    for name in ("psga_20261120.csv", "psga_20261121.csv", "psga_20261122.csv.part", ".psga_20261123.csv",
                 "psga_20261124.csv.tmp"):  # fmt: skip
        drop_area.put(f"drop/psga/{name}", name.encode())

    export = newest_file("drop/psga", "psga_*", drop_area.base, drop_area.department("psga"))

    assert export is not None and export.name == "psga_20261121.csv" and export.data == b"psga_20261121.csv"
    assert newest_file("drop/psga", "nothing_*", drop_area.base, drop_area.department("psga")) is None


@pytest.mark.parametrize("pattern", ["../../x/*", "sub/*.csv", "..\\\\*"])
def test_a_file_pattern_cannot_leave_its_folder(pattern: str) -> None:
    with pytest.raises(ValidationError, match="names files, not folders"):
        SourceSystemDeclaration(code="s", name="s", location="drop/s", file_pattern=pattern)
