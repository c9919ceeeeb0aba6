from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from catalog.departments.schemas import SourceSystemDeclaration
from catalog.ingest.connectors import newest_file


def test_the_newest_finished_export_is_taken(tmp_path: Path) -> None:
    folder = tmp_path / "drop" / "psga"
    folder.mkdir(parents=True)
    for name in ("psga_20261120.csv", "psga_20261121.csv", "psga_20261122.csv.part", ".psga_20261123.csv"):
        (folder / name).write_bytes(name.encode())

    export = newest_file("drop/psga", "psga_*", tmp_path, tmp_path / "drop")

    assert export is not None and export.name == "psga_20261121.csv"
    assert newest_file("drop/psga", "nothing_*", tmp_path, tmp_path / "drop") is None


@pytest.mark.parametrize("pattern", ["../../x/*", "sub/*.csv", "..\\\\*"])
def test_a_file_pattern_cannot_leave_its_folder(pattern: str) -> None:
    with pytest.raises(ValidationError, match="names files, not folders"):
        SourceSystemDeclaration(code="s", name="s", location="drop/s", file_pattern=pattern)
