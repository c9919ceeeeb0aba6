"""Opening an export as a table: in its declared format and encoding, its chunks read as they are consumed.

A CSV export that begins as UTF-8 is read at once, on the word of its first block, while its whole text is checked
(UTF-8 throughout, plausible) in a thread of its own: the check costs no time of its own. When the check says
otherwise (the export is not text in any encoding it may be in, or it is GB18030 after an ASCII beginning), its word
stands: the error it found, or ``DecodedOtherwise``, upon which the caller reads the export again, decoded first.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.departments.models import SourceSystem
from catalog.ingest.decode import UTF8_BOM, DecodedFile, decode_file
from catalog.ingest.exports import ExportFile
from catalog.ingest.tables import RawTable, read_csv, read_json, read_xlsx
from catalog.items.models import CatalogItem

UTF8_DECLARED = ("auto", "utf-8", "utf8", "utf-8-sig")


class DecodedOtherwise(Exception):
    """The export is not the UTF-8 text its beginning promised: read it again, decoded first."""


@contextmanager
def opened_table(session: Session, item_id: int, export: ExportFile, speculate: bool = False) -> Iterator[RawTable]:
    """The export as a table whose chunks are read as they are consumed; when the block ends, its reading stops and
    a transcoded copy of its text is removed. ``speculate``: a CSV export beginning as UTF-8 is read while it is
    checked."""
    export_format, encoding = _declared(session, item_id, export)
    if export_format == "xlsx":
        with _stopped(read_xlsx(export.path)) as table:
            yield table
        return
    if speculate and export_format == "csv" and encoding.lower() in UTF8_DECLARED and _begins_as_utf8(export.path):
        with _checked_meanwhile(export.path, encoding) as assumed, _stopped(read_csv(assumed)) as table:
            yield table
        return
    decoded = decode_file(export.path, encoding)
    try:
        if export_format == "json":
            with decoded.open() as text, _stopped(read_json(text.read())) as table:  # JSON is parsed whole
                yield table
        else:
            with _stopped(read_csv(decoded)) as table:
                yield table
    finally:
        _removed(decoded)


@contextmanager
def _stopped(table: RawTable) -> Iterator[RawTable]:
    """The table, its reading stopped when the block ends, however it ends (the file closed, Arrow's reading ended)."""
    try:
        yield table
    finally:
        if isinstance(table.chunks, Generator):
            table.chunks.close()


def _declared(session: Session, item_id: int, export: ExportFile) -> tuple[str, str]:
    """The export's format and declared encoding (query results and API pages: UTF-8 JSON lines)."""
    source = session.scalar(
        select(SourceSystem)
        .join(CatalogItem, CatalogItem.source_system_id == SourceSystem.id)
        .where(CatalogItem.id == item_id)
    )
    if source is not None and source.access in ("sql", "http"):
        return "json", "utf-8"
    if source is None:
        return _format_from_name(export.name), "auto"
    return source.format, source.encoding


@contextmanager
def _checked_meanwhile(path: Path, encoding: str) -> Iterator[DecodedFile]:
    """The file taken as UTF-8 (past a BOM) while ``decode_file`` checks it in the background; the check's verdict is
    awaited when the block ends, or fails, and stands."""
    assumed = DecodedFile(path, _bom_length(path), "utf-8", transcoded=False)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-decode") as pool:
        checked = pool.submit(decode_file, path, encoding)
        try:
            yield assumed
        except BaseException:
            _verdict(checked, assumed)  # an export that is not UTF-8 fails the read: the check tells why
            raise
        _verdict(checked, assumed)


def _verdict(checked: Future[DecodedFile], assumed: DecodedFile) -> None:
    decoded = checked.result()  # the check's own error (not text in any encoding it may be in) stands
    if (decoded.path, decoded.offset) != (assumed.path, assumed.offset):
        _removed(decoded)
        raise DecodedOtherwise(f"the export decodes as {decoded.encoding}")


def _begins_as_utf8(path: Path) -> bool:
    with path.open("rb") as source:
        head = source.read(64 * 1024)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(head) - 3 and len(head) == 64 * 1024  # only a character cut by the sample's end
    return True


def _bom_length(path: Path) -> int:
    with path.open("rb") as source:
        return len(UTF8_BOM) if source.read(len(UTF8_BOM)) == UTF8_BOM else 0


def _removed(decoded: DecodedFile) -> None:
    if decoded.transcoded:
        decoded.path.unlink(missing_ok=True)


def _format_from_name(file_name: str) -> str:
    suffix = Path(file_name).suffix.lower().lstrip(".")
    return {"jsonl": "json", "ndjson": "json", "xlsx": "xlsx", "json": "json"}.get(suffix, "csv")
