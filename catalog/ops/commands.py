"""``datashare freshness``: whether each pulled item's exports come on time, from the command line."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Annotated, Any

import typer

from catalog.cli import AsJson, out, unit_of_work
from catalog.ops.schemas import FreshnessStatus, FreshnessSummary, ItemFreshness, StatusCounts

ON_TIME, LATE, BEHIND = 0, 3, 4  # exit codes; 1 is a refusal (an unknown department), 2 a usage error
FRESHNESS_EXIT_CODES = """Exit codes: 0 every item shown is on time (or none is shown); 3 an item shown is late, none
overdue or never received; 4 an item shown is overdue or never received; 1 refused (an unknown department); 2 a
usage error."""


def freshness(
    department: Annotated[str | None, typer.Option(help="Only this department's items.")] = None,
    status: Annotated[FreshnessStatus | None, typer.Option(help="Only items in this status.")] = None,
    as_json: AsJson = False,
) -> None:
    """Each published item with a source system: on time, late, overdue or never received against its update
    frequency (times in UTC), with the platform-wide counts. Late: an export due by the schedule has not come
    within the grace (DATASHARE_FRESHNESS_GRACE_MINUTES); overdue: two in a row."""
    from catalog.db import utcnow
    from catalog.ops.freshness import item_freshness, summarize

    now = utcnow()
    with unit_of_work() as session:
        everything = item_freshness(session, now=now)
        if department is not None and not any(entry.department == department for entry in everything):
            item_freshness(session, department=department, now=now)  # refuses an unknown department
    in_scope = [entry for entry in everything if department is None or entry.department == department]
    shown = [entry for entry in in_scope if status is None or entry.status is status]
    if as_json:
        typer.echo(json.dumps(_as_json(shown, summarize(in_scope, now)), ensure_ascii=False, indent=2))
    else:
        _print(shown)
        if department is not None:
            out.print(_counts_line(f"department {department}", summarize(in_scope, now).overall))
        out.print(_counts_line("platform", summarize(everything, now).overall) + f" (as of {_when(now)} UTC)")
    raise typer.Exit(exit_code(shown))


def exit_code(shown: list[ItemFreshness]) -> int:
    statuses = {entry.status for entry in shown}
    if statuses & {FreshnessStatus.OVERDUE, FreshnessStatus.NEVER_RECEIVED}:
        return BEHIND
    return LATE if FreshnessStatus.LATE in statuses else ON_TIME


def _print(shown: list[ItemFreshness]) -> None:
    from rich.table import Table

    table = Table("department", "item", "title", "frequency", "status", "due", "last received", "last published",
                  "last check")  # fmt: skip
    for entry in shown:
        check = f"{_when(entry.last_checked_at)} {entry.last_check_outcome}" if entry.last_checked_at else "never"
        table.add_row(
            entry.department, entry.item, entry.title, entry.update_frequency, entry.status.value, _when(entry.due_at),
            _when(entry.last_received_at, "never"), _when(entry.last_published_at, "never"), check,
        )  # fmt: skip
    out.print(table)


def _counts_line(scope: str, counts: StatusCounts) -> str:
    return (f"{scope}: {counts.total} item(s), {counts.on_time} on time, {counts.late} late, {counts.overdue} "
            f"overdue, {counts.never_received} never received")  # fmt: skip


def _when(moment: datetime | None, missing: str = "") -> str:
    return missing if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _as_json(shown: list[ItemFreshness], counted: FreshnessSummary) -> dict[str, Any]:
    """As ``GET /freshness`` answers: the counts over the department asked for (else every department), whatever
    the status filter; the items in the status asked for."""
    return {
        "as_of": counted.as_of.isoformat(),
        "overall": dataclasses.asdict(counted.overall),
        "departments": [dataclasses.asdict(counts) for counts in counted.departments],
        "items": [_json_values(dataclasses.asdict(entry)) for entry in shown],
    }


def _json_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in values.items()}
