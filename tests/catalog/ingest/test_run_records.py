"""Run records as ``GET /runs`` and ``datashare runs`` list them: filters (item, department, several outcomes, start
time), keyset pages newest first (oldest first for the quarantine) that neither repeat nor skip a run while runs
are recorded meanwhile, one department's view of them, and the report's verdict read in the database."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access.policy import EVERYWHERE
from catalog.errors import NotFound
from catalog.ingest import runs
from catalog.ingest.models import IngestBatch, RawExport
from catalog.ingest.runs import Page, RunFilter, RunOutcome
from catalog.items.models import CatalogItem

ITEMS = {"PSGA-RK-0001": "psga", "SCJG-FR-0001": "scjg", "ZSJ-MS-0001": "zsj"}
OUTCOMES = ["published", "quarantined", "failed", "released", "discarded", "interrupted"]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def add_batch(session: Session, item: str, outcome: str, started_at: datetime, report: Any = None) -> int:
    """A run's record as the ingestion path leaves it (its export need not exist for listing)."""
    item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == item))
    raw = RawExport(item_id=item_id, sha256=secrets.token_hex(32), file_name=f"{item}.csv", size_bytes=1,
                    stored_path="/nowhere")  # fmt: skip
    session.add(raw)
    session.flush()
    batch = IngestBatch(item_id=item_id, raw_export_id=raw.id, outcome=outcome, trigger="test", host="elsewhere",
                        pid=1, started_at=started_at, finished_at=started_at + timedelta(seconds=2), reasons=[],
                        report={} if report is None else report)  # fmt: skip
    session.add(batch)
    session.flush()
    return batch.id


@pytest.fixture
def recorded(demo: Session) -> list[dict[str, Any]]:
    """36 runs an hour apart, over three departments' items and six outcomes."""
    made = []
    for n in range(36):
        item, outcome = list(ITEMS)[n % 3], OUTCOMES[n % 6]
        started = T0 + timedelta(hours=n)
        batch = add_batch(demo, item, outcome, started)
        made.append({"batch": batch, "item": item, "department": ITEMS[item], "outcome": outcome, "started": started})
    return made


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [record["batch"] for record in records]


def listed(session: Session, wanted: RunFilter, visible_to: str = EVERYWHERE) -> list[int]:
    return ids(runs.run_page(session, wanted, Page(), visible_to=visible_to).runs)


def test_every_filter_given_must_match(demo: Session, recorded: list[dict[str, Any]]) -> None:
    def expected(keep: Any) -> list[int]:
        return sorted((run["batch"] for run in recorded if keep(run)), reverse=True)

    everything = listed(demo, RunFilter())
    assert everything == expected(lambda run: True) and len(everything) == 36
    assert listed(demo, RunFilter(item="SCJG-FR-0001")) == expected(lambda run: run["item"] == "SCJG-FR-0001")
    assert listed(demo, RunFilter(department="zsj")) == expected(lambda run: run["department"] == "zsj")
    several = RunFilter(outcomes=(RunOutcome.QUARANTINED, RunOutcome.FAILED))
    assert listed(demo, several) == expected(lambda run: run["outcome"] in ("quarantined", "failed"))
    since, until = T0 + timedelta(hours=10), T0 + timedelta(hours=20)
    assert listed(demo, RunFilter(since=since, until=until)) == expected(lambda run: since <= run["started"] < until)
    combined = RunFilter(department="psga", outcomes=(RunOutcome.PUBLISHED,), since=since)
    assert listed(demo, combined) == expected(
        lambda run: run["department"] == "psga" and run["outcome"] == "published" and run["started"] >= since
    )
    assert listed(demo, RunFilter(item="NOSUCH-0001")) == []


def test_a_time_without_a_zone_is_utc() -> None:
    naive = RunFilter(since=datetime(2026, 11, 1, 8), until=datetime(2026, 11, 2))
    assert naive.since == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert RunFilter(since=datetime(2026, 11, 1, 16, tzinfo=timezone(timedelta(hours=8)))).since == naive.since


def test_a_department_sees_its_own_items_runs_only(demo: Session, recorded: list[dict[str, Any]]) -> None:
    own = [run["batch"] for run in reversed(recorded) if run["department"] == "psga"]
    assert listed(demo, RunFilter(), visible_to="psga") == own
    assert listed(demo, RunFilter(department="scjg"), visible_to="psga") == []  # never another's, whatever asked
    assert listed(demo, RunFilter(item="SCJG-FR-0001"), visible_to="psga") == []
    theirs = next(run["batch"] for run in recorded if run["department"] == "scjg")
    assert runs.run_record(demo, theirs, visible_to="scjg")["department"] == "scjg"

    with pytest.raises(NotFound) as another:
        runs.run_record(demo, theirs, visible_to="psga")
    with pytest.raises(NotFound) as missing:
        runs.run_record(demo, 999_999, visible_to="psga")
    assert another.value.code == missing.value.code == "batch_not_found"
    assert another.value.message == f"ingest batch {theirs} does not exist"  # as if it did not exist
    with pytest.raises(NotFound):
        runs.quality_report(demo, theirs, visible_to="zsj")
    with pytest.raises(NotFound):
        runs.failing_rows_file(demo, theirs, visible_to="zsj")


def test_each_items_newest_run_is_the_first_its_listing_gives(demo: Session, recorded: list[dict[str, Any]]) -> None:
    everything = runs.newest_runs(demo, [*ITEMS, "NO-SUCH-ITEM"], visible_to=EVERYWHERE)
    assert everything == {item: runs.run_page(demo, RunFilter(item=item), Page(limit=1), visible_to=EVERYWHERE).runs[0]
                          for item in ITEMS}  # fmt: skip
    assert set(runs.newest_runs(demo, list(ITEMS), visible_to="psga")) == {
        item for item, department in ITEMS.items() if department == "psga"}  # fmt: skip
    assert runs.newest_runs(demo, [], visible_to=EVERYWHERE) == {}


def test_pages_newest_first_neither_repeat_nor_skip_while_runs_are_recorded(
    demo: Session, recorded: list[dict[str, Any]]
) -> None:
    wanted = RunFilter(outcomes=(RunOutcome.PUBLISHED, RunOutcome.QUARANTINED, RunOutcome.FAILED))
    there = listed(demo, wanted)
    seen: list[int] = []
    cursor = None
    for turn in range(100):
        page = runs.run_page(demo, wanted, Page(cursor, limit=4), visible_to=EVERYWHERE)
        seen += ids(page.runs)
        for outcome in ("published", "quarantined"):  # new runs, newer than any page, land before the first
            add_batch(demo, "PSGA-RK-0001", outcome, T0 - timedelta(days=turn))
        if page.next_cursor is None:
            break
        assert len(page.runs) == 4 and page.next_cursor == page.runs[-1]["batch"]
        cursor = page.next_cursor
    assert seen == there and len(set(seen)) == len(seen) == 18
    assert len(listed(demo, wanted)) == 18 + 2 * 5  # five pages were read, two runs recorded after each


def test_a_page_that_ends_the_listing_says_so(demo: Session, recorded: list[dict[str, Any]]) -> None:
    wanted = RunFilter(item="ZSJ-MS-0001")  # 12 runs
    exact = runs.run_page(demo, wanted, Page(limit=12), visible_to=EVERYWHERE)
    assert (len(exact.runs), exact.next_cursor) == (12, None)
    short = runs.run_page(demo, wanted, Page(limit=11), visible_to=EVERYWHERE)
    assert (len(short.runs), short.next_cursor) == (11, short.runs[-1]["batch"])
    rest = runs.run_page(demo, wanted, Page(short.next_cursor, limit=11), visible_to=EVERYWHERE)
    assert (ids(rest.runs), rest.next_cursor) == ([exact.runs[-1]["batch"]], None)


def test_the_quarantine_pages_oldest_first(demo: Session, recorded: list[dict[str, Any]]) -> None:
    waiting = [run["batch"] for run in recorded if run["outcome"] == "quarantined"]
    assert ids(runs.quarantined_batches(demo)) == waiting
    wanted = RunFilter(outcomes=(RunOutcome.QUARANTINED,))
    first = runs.run_page(demo, wanted, Page(limit=4, newest_first=False), visible_to=EVERYWHERE)
    rest = runs.run_page(demo, wanted, Page(first.next_cursor, limit=4, newest_first=False), visible_to=EVERYWHERE)
    assert ids(first.runs) + ids(rest.runs) == waiting and rest.next_cursor is None


def test_records_carry_the_department_and_the_reports_verdict_read_in_the_database(demo: Session) -> None:
    verdicts = {}
    for report, verdict in (({"success": False, "checks": [{"rule": "x"}]}, False), ({"success": True}, True),
                            ({}, None)):  # fmt: skip
        verdicts[add_batch(demo, "ZSJ-MS-0001", "quarantined", T0, report)] = verdict
    demo.expire_all()
    records = runs.run_page(demo, RunFilter(), Page(), visible_to="zsj").runs
    assert {record["batch"]: record["quality_success"] for record in records} == verdicts
    assert {record["department"] for record in records} == {"zsj"}
    batch = next(iter(verdicts))
    full = runs.quality_report(demo, batch, visible_to=EVERYWHERE)
    assert full["report"] == {"success": False, "checks": [{"rule": "x"}]} and full["batch"] == batch
    assert runs.failing_rows_file(demo, batch, visible_to="zsj") == (None, None)


def test_the_command_lines_listing_is_the_same_list(demo: Session, recorded: list[dict[str, Any]]) -> None:
    """``run_records`` (what ``datashare runs`` printed before it took filters) is the unfiltered page."""
    assert runs.run_records(demo, limit=5) == runs.run_page(demo, RunFilter(), Page(limit=5), visible_to="*").runs
    assert ids(runs.run_records(demo, "PSGA-RK-0001", outcome="failed")) == listed(
        demo, RunFilter(item="PSGA-RK-0001", outcomes=(RunOutcome.FAILED,))
    )
