"""Incremental exports on both backends: an export of changed keys (``_op``: I, U, D) publishes the next version with
exactly those keys inserted, updated and deleted, every other row carried over; earlier versions stay as they were;
a bad delta is quarantined (the current version stays), the same delta twice is a duplicate, a delta cannot apply
across a change of fields, and pruning keeps every retained version whole."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from catalog.audit.models import AuditEvent
from catalog.ingest.changes import conform_export
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.ingest.publish import prune_versions, read_version
from catalog.ingest.quarantine import release_batch
from catalog.ingest.tables import RawTable
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import LoadPolicy
from tests.catalog.ingest.test_ingest_service import POPULATION, csv_bytes, current_version, run

Rows = dict[str, tuple[str, ...]]  # by resident ID: the other cells as published (text)


@pytest.fixture
def lines(samples_dir: Path) -> list[str]:
    """The population export of 20 November (500 residents), header first."""
    return (samples_dir / "psga_population_20261120.csv").read_text(encoding="utf-8-sig").splitlines()


@pytest.fixture
def newcomers(samples_dir: Path) -> list[str]:
    """The 20 residents the export of 21 November adds."""
    return (samples_dir / "psga_population_20261121.csv").read_text(encoding="utf-8-sig").splitlines()[501:]


@pytest.fixture
def incremental(demo: Session) -> Session:
    """The population item declared incremental (its exports with ``_op`` are deltas)."""
    item = demo.scalar(select(CatalogItem).where(CatalogItem.code == POPULATION))
    assert item is not None
    item.load = {"mode": "incremental"}
    demo.flush()
    return demo


def moved(line: str, community: str = "碧岭社区") -> str:
    cells = line.split(",")
    cells[6], cells[7] = community, "2026-11-21 02:00:00"
    return ",".join(cells)


def key(line: str) -> str:
    return line.split(",")[0]


def delta(header: str, updates: list[str] = (), inserts: list[str] = (), deletes: list[str] = ()) -> bytes:  # type: ignore[assignment]
    rows = [f"{line},U" for line in updates] + [f"{line},I" for line in inserts]
    rows += [f"{key(line)},,,,,,,,D" for line in deletes]  # a deletion gives its key only
    return csv_bytes([f"{header},_op", *rows])


def published(session: Session, number: int) -> Rows:
    version = session.scalar(select(ItemVersion).where(ItemVersion.number == number))
    assert version is not None
    frame = read_version(session, version)
    assert len(frame) == version.row_count
    shown = frame.astype(str).values.tolist()
    return {row[0]: tuple(row[1:]) for row in shown}


def expected(lines: list[str]) -> Rows:
    """Export lines as ``published`` shows them back, by key (an empty cell is a null)."""
    return {key(line): tuple(cell or "None" for cell in line.split(",")[1:]) for line in lines}


def test_an_incremental_export_changes_exactly_its_keys(
    incremental: Session, tmp_path: Path, lines: list[str], newcomers: list[str]
) -> None:
    first = run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    before = published(incremental, 1)
    updates, deletes, inserts = [moved(line) for line in lines[1:4]], lines[10:12], newcomers[:5]

    outcome = run(incremental, tmp_path, POPULATION, delta(lines[0], updates, inserts, deletes), "delta.csv")

    assert (outcome.outcome, outcome.version, outcome.rows_read, outcome.rows_accepted) == ("published", 2, 10, 10)
    assert outcome.changes == {"mode": "incremental", "based_on": 1, "inserted": 5, "updated": 3, "deleted": 2,
                               "deletes_absent": 0, "carried_over": 495, "first_row": 500}  # fmt: skip
    want = {k: v for k, v in expected(lines[1:]).items() if k not in {key(line) for line in deletes}}
    want |= expected(updates) | expected(inserts)
    after = published(incremental, 2)
    assert after == want
    assert published(incremental, 1) == before  # the earlier version is as it was
    assert first.version == 1 and len(after) == 503 and current_version(incremental, POPULATION).row_count == 503  # type: ignore[union-attr]
    batch = incremental.get(IngestBatch, outcome.batch_id)
    assert batch is not None and batch.report["load"] == outcome.changes
    event = incremental.scalars(select(AuditEvent).where(AuditEvent.action == "ingest.published")
                                .order_by(AuditEvent.id.desc())).first()  # fmt: skip
    assert event is not None and event.detail["load"]["updated"] == 3 and event.detail["version_rows"] == 503


def test_versions_chain_and_each_stays_readable_as_published(
    incremental: Session, tmp_path: Path, lines: list[str], newcomers: list[str]
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    run(incremental, tmp_path, POPULATION, delta(lines[0], [moved(lines[1])], newcomers[:2], [lines[5]]), "d1.csv")
    second = published(incremental, 2)
    again = moved(lines[1], "江岭社区")  # updated twice; one inserted by the first delta deleted by the second
    outcome = run(incremental, tmp_path, POPULATION, delta(lines[0], [again], [], [newcomers[0], lines[6]]), "d2.csv")

    assert outcome.changes is not None and (outcome.changes["updated"], outcome.changes["deleted"]) == (1, 2)
    third = published(incremental, 3)
    assert third[key(lines[1])][5] == "江岭社区" and second[key(lines[1])][5] == "碧岭社区"
    assert key(newcomers[0]) in second and key(newcomers[0]) not in third
    assert len(second) == 501 and len(third) == 499
    assert published(incremental, 2) == second
    versions = incremental.scalars(select(ItemVersion).order_by(ItemVersion.number)).all()
    item = f"item_{versions[0].item_id}"
    assert [(v.table_name, v.generation) for v in versions] == [(f"{item}_v{n}", f"{item}_g1") for n in (1, 2, 3)]
    assert {f"{item}_v1", f"{item}_v2", f"{item}_v3"} <= set(inspect(incremental.connection()).get_view_names())


def test_a_deletion_of_an_unknown_key_is_counted_not_refused(
    incremental: Session, tmp_path: Path, lines: list[str], newcomers: list[str]
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    outcome = run(incremental, tmp_path, POPULATION, delta(lines[0], deletes=[newcomers[0]]), "d.csv")
    assert outcome.changes is not None and (outcome.changes["deleted"], outcome.changes["deletes_absent"]) == (0, 1)
    assert current_version(incremental, POPULATION).row_count == 500  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        pytest.param(
            lambda line: line[:17] + ("1" if line[17] == "0" else "0") + line[18:],
            "公民身份号码: resident ID check digit failed for 1 row(s) (rows 2)",
            id="bad-key",
        ),
        pytest.param(lambda line: line.replace(",U", ",X"), "_op: operation failed for 1 row(s) (rows 2)", id="bad-op"),
        pytest.param(
            lambda line: line.replace("2026-11-21", "2026-02-30"),
            "更新时间: type datetime failed for 1 row(s) (rows 2)",
            id="bad-date",
        ),
    ],
)
def test_a_bad_delta_is_quarantined_and_the_current_version_stays(
    incremental: Session, tmp_path: Path, lines: list[str], broken: object, reason: str
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    body = delta(lines[0], [moved(line) for line in lines[1:4]]).decode().splitlines()
    body[2] = broken(body[2])  # type: ignore[operator]

    outcome = run(incremental, tmp_path, POPULATION, csv_bytes(body), "bad.csv")

    assert outcome.outcome == "quarantined" and reason in outcome.reasons, outcome.reasons
    current = current_version(incremental, POPULATION)
    assert current is not None and (current.number, current.generation) == (1, None)
    assert current.table_name == f"item_{current.item_id}_v1"
    assert f"item_{current.item_id}_v2" not in inspect(incremental.connection()).get_view_names()
    assert published(incremental, 1) == expected(lines[1:])


def test_deletions_that_shrink_the_version_too_far_are_a_volume_drop(
    incremental: Session, tmp_path: Path, lines: list[str]
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    outcome = run(incremental, tmp_path, POPULATION, delta(lines[0], deletes=lines[1:301]), "purge.csv")
    assert outcome.outcome == "quarantined"
    assert outcome.reasons == ["*: row count failed: 200 rows, below the threshold 250 (50% of the previous "
                               "version's 500 rows)"]  # fmt: skip
    assert current_version(incremental, POPULATION).number == 1  # type: ignore[union-attr]


def test_the_same_delta_twice_is_a_duplicate(incremental: Session, tmp_path: Path, lines: list[str]) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    data = delta(lines[0], [moved(lines[1])])
    first, again = run(incremental, tmp_path, POPULATION, data, "d.csv"), run(incremental, tmp_path, POPULATION, data)
    assert (first.outcome, again.outcome, again.batch_id) == ("published", "duplicate", first.batch_id)
    assert incremental.scalar(select(func.max(ItemVersion.number))) == 2


def test_a_released_delta_is_applied_without_its_bad_rows(
    incremental: Session, tmp_path: Path, lines: list[str], newcomers: list[str]
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    body = delta(lines[0], [moved(lines[1])], newcomers[:2]).decode().replace(",I\n", ",Z\n", 1)
    quarantined = run(incremental, tmp_path, POPULATION, body.encode(), "d.csv")
    assert quarantined.outcome == "quarantined"

    released = release_batch(incremental, quarantined.batch_id, "ops:wang", "the operation code is a typo")

    assert (released.outcome, released.version, released.rows_accepted, released.rows_rejected) == ("released", 2, 2, 1)
    assert released.changes is not None and (released.changes["updated"], released.changes["inserted"]) == (1, 1)
    assert len(published(incremental, 2)) == 501


def test_without_a_version_or_across_a_change_of_fields_a_delta_waits_for_a_full_export(
    incremental: Session, tmp_path: Path, lines: list[str]
) -> None:
    early = run(incremental, tmp_path, POPULATION, delta(lines[0], [moved(lines[1])]), "early.csv")
    assert early.outcome == "quarantined" and "send a full export first" in early.reasons[0]

    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    born = incremental.scalar(select(ItemField).where(ItemField.name == "出生日期"))
    assert born is not None
    born.data_type, born.minimum = "string", None  # the declaration changed since version 1
    incremental.flush()
    refused = run(incremental, tmp_path, POPULATION, delta(lines[0], [moved(lines[2])]), "d.csv")
    assert refused.outcome == "quarantined"
    assert "the item's fields changed since version 1" in refused.reasons[0]

    full = run(incremental, tmp_path, POPULATION, csv_bytes([lines[0], *map(moved, lines[1:])]), "full.csv")
    assert (full.outcome, full.changes) == ("published", None)  # no operation column: a full export
    applied = run(incremental, tmp_path, POPULATION, delta(lines[0], [moved(lines[3], "六和社区")]), "d2.csv")
    assert applied.outcome == "published" and applied.changes is not None and applied.changes["based_on"] == 2


def test_an_item_not_declared_incremental_refuses_the_operation_column(
    demo: Session, tmp_path: Path, lines: list[str]
) -> None:
    run(demo, tmp_path, POPULATION, csv_bytes(lines))
    outcome = run(demo, tmp_path, POPULATION, delta(lines[0], [moved(lines[1])]), "d.csv")
    assert outcome.outcome == "quarantined" and outcome.reasons == ["schema drift: unexpected column(s): _op"]


def test_pruning_keeps_the_retained_versions_whole(
    incremental: Session, tmp_path: Path, lines: list[str], newcomers: list[str]
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    run(incremental, tmp_path, POPULATION, delta(lines[0], [moved(lines[1])], newcomers[:3], [lines[9]]), "d1.csv")
    run(incremental, tmp_path, POPULATION, delta(lines[0], [moved(lines[2])], [], [newcomers[0]]), "d2.csv")
    third = published(incremental, 3)
    item_id = current_version(incremental, POPULATION).item_id  # type: ignore[union-attr]
    for version in incremental.scalars(select(ItemVersion).where(ItemVersion.number < 3)):
        version.published_at -= timedelta(days=91)
    incremental.flush()

    assert prune_versions(incremental, item_id, retention_days=90) == [1, 2]

    assert published(incremental, 3) == third
    connection = incremental.connection()
    assert {f"item_{item_id}_v1", f"item_{item_id}_v2"}.isdisjoint(inspect(connection).get_view_names())
    generation = f"item_{item_id}_g1"
    assert connection.scalar(text(f'SELECT count(*) FROM "{generation}"')) == len(third)  # what no version sees goes

    run(incremental, tmp_path, POPULATION, csv_bytes(lines) + b"\n", "full.csv")  # a blank line: not a duplicate
    incremental.scalars(select(ItemVersion).where(ItemVersion.number == 3)).one().published_at -= timedelta(days=91)
    assert prune_versions(incremental, item_id, retention_days=90) == [3]
    assert generation not in inspect(incremental.connection()).get_table_names()  # with its last version


def test_json_cells_and_every_operation_word() -> None:
    from tests.catalog.helpers import demo_file

    fields = next(item for item in demo_file().items if item.code == POPULATION).fields
    names = [field.name for field in fields]
    row = ["440524188001010014", "丁一", "男", "1880-01-01", None, None, "江岭社区", "2026-11-21 02:00:00"]
    words = ["新增", " u ", "UPSERT", "删除", "d", "Delete", "X", None]
    table = RawTable.from_rows([*names, "操作"], [[*row, word] for word in words])

    (chunk,) = conform_export(table, fields, LoadPolicy(mode="incremental", operation_column="操作"))  # type: ignore[arg-type]

    assert chunk.deletes is not None and chunk.deletes.tolist() == [False] * 3 + [True] * 3 + [False] * 2
    assert [(error.row, error.field) for error in chunk.errors] == [(7, "操作"), (8, "操作")]
    assert chunk.table.column("姓名").to_pylist() == ["丁一"] * 3 + [None] * 3 + ["丁一"] * 2
