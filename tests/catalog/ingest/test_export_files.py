"""Exports as files: the ingestion path reads an export a block at a time and never holds it whole, and leaves no
copy of its own behind (a spooled upload, a transcoded text)."""

from __future__ import annotations

import tempfile
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from catalog.declarations.service import import_catalog, parse_catalog_text
from catalog.ingest import decode, exports, reading, tables
from catalog.ingest.exports import export_at
from catalog.ingest.service import ingest_export
from catalog.ingest.third_party import load_great_expectations

CATALOG = """version: 1
departments: [{code: mem, name_zh: 内存测试, name_en: Memory, kind: district_unit}]
items:
  - code: MEM-0001
    title: 大导出
    department: mem
    update_frequency: "@daily"
    sharing_type: conditional
    status: published
    fields:
      - {name: 编号, data_type: integer, key: true, semantic_type: identifier, level: 1}
      - {name: 说明, semantic_type: free_text, level: 1}
"""
ROWS, TEXT = 20_000, "说明文字" * 120  # about 29 MB of CSV in few rows: little else grows with it


def big_export(folder: Path, encoding: str) -> Path:
    path = folder / "big.csv"
    with path.open("w", encoding=encoding) as out:
        out.write("编号,说明\n")
        out.writelines(f"{n},{TEXT}{n}\n" for n in range(1, ROWS + 1))
    return path


@pytest.fixture(autouse=True)
def own_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spooled copies go to the system's temporary folder: this test's own, so that others' copies do not count."""
    (tmp_path / "temporary").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))


def spooled_copies() -> set[Path]:
    return set(Path(tempfile.gettempdir()).iterdir())


def test_an_export_is_read_in_blocks_never_whole(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With blocks of 1 MB, what Python holds at its peak is a small part of the export (Arrow's buffers are not
    counted: they are as large as a block)."""
    for module in (decode, exports):
        monkeypatch.setattr(module, "BLOCK_BYTES", 1 << 20)
    monkeypatch.setattr(tables, "CSV_BLOCK_BYTES", 1 << 20)
    import_catalog(session, parse_catalog_text(CATALOG), actor="test:officer", by_officer=True)
    load_great_expectations()  # its import is not the export's memory
    for number, encoding in enumerate(("utf-8", "gb18030"), 1):
        path, before = big_export(tmp_path, encoding), spooled_copies()
        tracemalloc.start()
        try:
            outcome = ingest_export(session, "MEM-0001", export_at(path), f"big_{number}.csv", raw_dir=tmp_path / "raw",
                                    trigger="test")  # fmt: skip
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (outcome.outcome, outcome.rows_accepted) == ("published", ROWS), outcome.reasons
        assert peak < path.stat().st_size / 3, (encoding, peak, path.stat().st_size)
        assert spooled_copies() == before == set()  # the transcoded text is gone
        assert path.exists()  # a file read where it lies is the department's: left as it was


def test_bytes_handed_over_are_spooled_and_removed(session: Session, tmp_path: Path) -> None:
    import_catalog(session, parse_catalog_text(CATALOG), actor="test:officer", by_officer=True)
    before = spooled_copies()
    outcome = ingest_export(session, "MEM-0001", "编号,说明\n1,一\n".encode(), "small.csv", raw_dir=tmp_path / "raw",
                            trigger="test")  # fmt: skip
    assert outcome.outcome == "published"
    assert spooled_copies() == before == set()
    (kept,) = (tmp_path / "raw" / "MEM-0001").iterdir()
    assert kept.read_bytes() == "编号,说明\n1,一\n".encode()


def ascii_then(tail: str, folder: Path) -> Path:
    """A UTF-8 export whose first 100,000 bytes are plain (read at once, checked meanwhile), then ``tail``."""
    path = folder / "late.csv"
    plain = "".join(f"{n},plain text {n:08d}\n" for n in range(1, 5_001))
    path.write_bytes(("编号,说明\n" + plain + tail).encode("utf-8", errors="surrogateescape"))
    return path


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        ("5001,\ue000私用\n", "control or private-use characters"),
        ("5001,\udcff\n", "does not decode as auto text: not utf-8: invalid byte 0xFF"),  # not text at all
    ],
)
def test_what_the_whole_check_finds_after_a_utf8_beginning_stands(
    session: Session, tmp_path: Path, tail: str, reason: str
) -> None:
    import_catalog(session, parse_catalog_text(CATALOG), actor="test:officer", by_officer=True)
    path = ascii_then(tail, tmp_path)
    result = ingest_export(session, "MEM-0001", export_at(path), path.name, raw_dir=tmp_path / "raw", trigger="test")
    assert result.outcome == "quarantined"
    assert any(reason in text for text in result.reasons), result.reasons
    assert spooled_copies() == set()


def test_an_export_read_as_utf8_that_is_not_is_read_again_decoded(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GB18030 export taken for UTF-8 by its beginning (forced here: the check of the beginning is fooled) fails to
    read as UTF-8; the whole check says GB18030, and the export is read again, transcoded, and published."""
    import_catalog(session, parse_catalog_text(CATALOG), actor="test:officer", by_officer=True)
    monkeypatch.setattr(reading, "_begins_as_utf8", lambda path: True)
    path = tmp_path / "gb.csv"
    path.write_bytes(
        ("编号,说明\n" + "".join(f"{n},深圳市坪山区马峦街道{n}号\n" for n in range(1, 301))).encode("gb18030")
    )
    result = ingest_export(session, "MEM-0001", export_at(path), path.name, raw_dir=tmp_path / "raw", trigger="test")
    assert (result.outcome, result.rows_accepted) == ("published", 300), result.reasons
    assert spooled_copies() == set()
