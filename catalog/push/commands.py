"""``datashare deliveries``: push delivery from the command line, for ops on the platform's hosts: the records of what
was sent (the failures first of all) and a delivery run of an item now, through the same code as its DAG."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from catalog.cli import AsJson, _engine, _settings, default_actor, err, out, unit_of_work

deliveries_app = typer.Typer(help="Push delivery: records, runs.", no_args_is_help=True)


@deliveries_app.command("list")
def list_deliveries(
    item: Annotated[str | None, typer.Option(help="One item's only.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Failed ones only.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: AsJson = False,
) -> None:
    """Deliveries, newest first: target, version, status, rows, attempts and why the last attempt failed."""
    from sqlalchemy import select

    from catalog.push.models import PushDelivery

    statement = select(PushDelivery).order_by(PushDelivery.id.desc()).limit(limit)
    if item:
        statement = statement.where(PushDelivery.item_code == item)
    if failed:
        statement = statement.where(PushDelivery.status == "failed")
    with unit_of_work() as session:
        records = [
            {"id": r.id, "item": r.item_code, "version": r.version, "department": r.department, "target": r.target_name,
             "kind": r.kind, "status": r.status, "mode": r.mode, "rows": r.rows, "attempts": r.attempts,
             "error": r.error, "finished_at": r.finished_at.isoformat() if r.finished_at else None}
            for r in session.scalars(statement)
        ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    for r in records:
        rows = "" if r["rows"] is None else f" {r['rows']} rows"
        why = f" — {r['error']}" if r["error"] else ""
        out.print(f"{r['id']}\t{r['item']} v{r['version']} → {r['department']}/{r['target']} ({r['kind']})\t"
                  f"{r['status']}{rows}, {r['attempts']} attempt(s){why}")  # fmt: skip
    out.print(f"{len(records)} deliver{'y' if len(records) == 1 else 'ies'}.")


@deliveries_app.command("run")
def run(item: Annotated[str, typer.Argument(help="The item's code.")], as_json: AsJson = False) -> None:
    """Send the item's current version now to every target that lacks it (as its DAG does). Exit 1 if any failed."""
    from catalog.push.service import deliver_item

    engine = _engine()
    try:
        report = deliver_item(engine, _settings(), item, default_actor())
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        out.print(report.summary)
        for line in report.delivered:
            out.print(f"  delivered {line}")
        for line in report.failed:
            err.print(f"  FAILED {line}")
    if report.failed:
        raise typer.Exit(1)
