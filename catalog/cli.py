"""The ``datashare`` command line: database, catalog and demo commands over the catalog services."""

from __future__ import annotations

import csv
import dataclasses
import getpass
import importlib
import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from typer import _click as click  # Typer vendors Click: its groups and contexts are this module's classes
from typer.core import TyperGroup

from catalog import demo as demo_files
from catalog.classification.types import REPORTS, SemanticType
from catalog.errors import DomainError
from catalog.items.schemas import ItemStatus, SharingType

if TYPE_CHECKING:  # the services load with the command that uses them: `datashare --help` imports none of them
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from catalog.access.service import Principal
    from catalog.classification import review
    from catalog.declarations.schemas import CatalogFile
    from catalog.ingest.service import IngestOutcome
    from catalog.items.schemas import ItemRead, SearchPage
    from catalog.settings import Settings

# Command groups kept in modules of their own (they use this module's helpers): name -> (module, Typer app, help).
# Each module is imported when one of its commands runs, not for `datashare --help` or another group's commands.
DEFERRED_GROUPS: dict[str, tuple[str, str, str]] = {
    "audit": ("catalog.audit.commands", "audit_app", "The audit trail: list, seal, verify, head."),
    "policy": ("catalog.access.commands", "policy_app", "Access policy: drift checks."),
    "data": ("catalog.delivery.commands", "data_app", "Shared data: verification look-ups."),
    "deliveries": ("catalog.push.commands", "deliveries_app", "Push delivery: records, runs."),
    "usage": ("catalog.utilisation.commands", "usage_app", "Utilisation figures: platform, departments, months."),
    "notifications": (
        "catalog.notifications.commands",
        "notifications_app",
        "Notifications: deliveries, e-mail addresses, departments' webhooks.",
    ),
}


class DeferredGroups(TyperGroup):
    """The top-level group: it lists the deferred groups by name and help, and loads one when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(name for name in DEFERRED_GROUPS if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in DEFERRED_GROUPS:
            return super().get_command(ctx, cmd_name)
        return TyperGroup(name=cmd_name, help=DEFERRED_GROUPS[cmd_name][2])  # listed in the help, never run

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in DEFERRED_GROUPS and args[0] not in self.commands:
            self.add_command(_load_group(args[0]))
        return super().resolve_command(ctx, args)


def _load_group(name: str) -> click.Command:
    """A deferred group's commands, built as Typer builds a group added to this one."""
    module, attribute, _ = DEFERRED_GROUPS[name]
    holder = typer.Typer()
    holder.add_typer(getattr(importlib.import_module(module), attribute), name=name)
    return typer.main.get_group(holder).commands[name]


app = typer.Typer(cls=DeferredGroups, help="Government data-sharing platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
catalog_app = typer.Typer(help="Catalog items: import, export, search, lifecycle.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
quarantine_app = typer.Typer(help="Quarantined batches: list, release with an override, discard.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
review_app = typer.Typer(
    help="Classification review: the officers' queue, decisions, stewards' proposals, history, reports.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")

# Wide enough for Chinese titles when the output is not a terminal (pipes, CI logs).
out = Console(soft_wrap=True, markup=False, highlight=False, width=None if sys.stdout.isatty() else 160)
# Catalog text is data, never Rich markup.
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
DEMO_CATALOG = demo_files.CATALOG
DEMO_OFFICER = "officer"  # the demo's data officer (catalog.access.demo), who imports the demo catalog

Actor = Annotated[str, typer.Option(help="Who is acting, recorded in the item history.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _settings() -> Settings:
    from catalog.settings import get_settings  # pydantic-settings: loaded by the commands that read settings

    return get_settings()


def default_actor() -> str:
    return f"cli:{getpass.getuser()}"


def _engine(require_schema: bool = True) -> Engine:
    from sqlalchemy import inspect

    from catalog.db import make_engine
    from catalog.ingest.manifest import follow_catalog

    settings = _settings()
    engine = follow_catalog(make_engine(settings.resolved_database_url), settings.pipeline_manifest_location)
    if require_schema and not inspect(engine).has_table("alembic_version"):
        err.print("The database has no schema yet: run `datashare db upgrade` first.", style="red")
        raise typer.Exit(2)
    return engine


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """A committed unit of work; a domain error becomes a clear message and exit code 1."""
    from catalog.db import session_scope

    engine = _engine()
    try:
        with session_scope(engine) as session:
            yield session
    except DomainError as error:
        err.print(error.message, style="red")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest revision."""
    from catalog.migrate import upgrade

    engine = _engine(require_schema=False)
    upgrade(engine)
    engine.dispose()
    out.print(f"Database at {engine.url.render_as_string(hide_password=True)} is up to date.")


Officer = Annotated[
    str | None,
    typer.Option(help="A data officer's username: the import may then carry published items, whose fields are "
                 "recorded as approved by that officer."),
]  # fmt: skip


@catalog_app.command("import")
def catalog_import(file: Path, actor: Actor = "", officer: Officer = None) -> None:
    """Import a catalog file: validated whole first, then written all or nothing. New items are drafts unless a
    data officer imports them (``--officer``); changes to approved fields' classification go to review."""
    from catalog.declarations import service as declarations
    from catalog.ingest.manifest import rewrite_after_commit

    with unit_of_work() as session:
        if officer:
            principal = _principal(session, officer, "decide")
            report = declarations.import_catalog_file(session, file, principal, by_officer=True)
        else:
            report = declarations.import_catalog_file(session, file, actor or default_actor())
        rewrite_after_commit(session)  # written whole even when nothing changed: an import sets a platform up
    out.print(
        f"Imported {file}: {report.items.created} items created, {report.items.updated} updated, "
        f"{report.items.unchanged} unchanged; {report.departments_changed} departments changed"
        + ("; classification scheme changed." if report.scheme_changed else ".")
    )
    for change in report.items.proposals:
        what = "applied, awaiting confirmation" if change.kind == "raise" else "awaiting a data officer"
        out.print(f"  {change.item_code}.{change.field}: level {change.served.level} -> {change.declared.level}, "
                  f"{change.declared.semantic_type}, masking {change.declared.masking} ({what})")  # fmt: skip


@catalog_app.command("export")
def catalog_export(file: Path) -> None:
    """Write the whole catalog to a file in the catalog file format."""
    from catalog.declarations import service as declarations

    with unit_of_work() as session:
        catalog = declarations.export_catalog(session)
    file.write_text(declarations.dump_catalog(catalog), encoding="utf-8")
    out.print(f"Exported {len(catalog.departments)} departments and {len(catalog.items)} items to {file}.")


@catalog_app.command("schema")
def catalog_schema(output: Annotated[Path | None, typer.Option(help="Write to this file.")] = None) -> None:
    """Print (or write) the JSON Schema of the catalog file format."""
    from catalog.declarations import service as declarations

    text = declarations.catalog_json_schema()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@catalog_app.command("search")
def catalog_search(
    text: Annotated[str | None, typer.Argument(help="Keywords; every word must match.")] = None,
    department: Annotated[str | None, typer.Option(help="Provider department code.")] = None,
    level: Annotated[int | None, typer.Option(help="Exact classification level.")] = None,
    max_level: Annotated[int | None, typer.Option(help="Highest classification level.")] = None,
    sharing_type: Annotated[SharingType | None, typer.Option(help="Sharing type.")] = None,
    open_data: Annotated[bool | None, typer.Option("--open/--not-open", help="Open-data flag.")] = None,
    status: Annotated[ItemStatus | None, typer.Option(help="Lifecycle status.")] = None,
    tag: Annotated[str | None, typer.Option(help="A tag the item carries.")] = None,
    sort: Annotated[str, typer.Option(help="code, title, level or updated_at; prefix - for descending.")] = "code",
    page: int = 1,
    page_size: int = 20,
    as_json: AsJson = False,
) -> None:
    """Search the catalog by keyword and filters."""
    from catalog.items import service as items
    from catalog.items.schemas import SearchQuery

    try:
        query = SearchQuery.model_validate(
            {
                "text": text,
                "department": department,
                "level": level,
                "max_level": max_level,
                "sharing_type": sharing_type,
                "open_data": open_data,
                "status": status,
                "tag": tag,
                "sort": sort,
                "page": page,
                "page_size": page_size,
            }
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    with unit_of_work() as session:
        result = items.search(session, query)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_page(result)


def _print_page(result: SearchPage) -> None:
    table = Table("code", "title", "department", "level", "sharing", "open", "status", "tags")
    for item in result.items:
        table.add_row(
            item.code,
            item.title,
            item.department,
            str(item.level),
            item.sharing_type.value,
            "yes" if item.open_data else "",
            item.status.value,
            ", ".join(item.tags),
        )
    out.print(table)
    first = (result.page - 1) * result.page_size + 1
    out.print(
        f"{result.total} items match; showing {first if result.items else 0}-"
        f"{first + len(result.items) - 1 if result.items else 0}."
    )


@catalog_app.command("show")
def catalog_show(
    code: str,
    as_json: AsJson = False,
    history: Annotated[bool, typer.Option(help="Also show the change history.")] = False,
) -> None:
    """Show one item with its fields (and its history)."""
    from catalog.items import service as items

    with unit_of_work() as session:
        item = items.get_item(session, code)
        changes = items.get_history(session, code) if history else []
    if as_json:
        data: dict[str, Any] = item.model_dump(mode="json")
        if history:
            data["history"] = [change.model_dump(mode="json") for change in changes]
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_item(item)
    for change in changes:
        out.print(
            f"{change.changed_at:%Y-%m-%d %H:%M:%S} {change.actor} {change.action}: "
            f"{json.dumps(change.changes, ensure_ascii=False)}",
            highlight=False,
        )


def _print_item(item: ItemRead) -> None:
    out.print(
        f"{item.code} {item.title}  (level {item.level}, {item.sharing_type.value}"
        f"{', open data' if item.open_data else ''}, {item.status.value})"
    )
    out.print(
        f"department {item.department}, source system {item.source_system or '-'}, "
        f"updated {item.update_frequency}; tags: {', '.join(item.tags) or '-'}"
    )
    if item.description:
        out.print(item.description)
    table = Table("field", "label", "type", "key", "null", "semantic", "level", "masking")
    for field in item.fields:
        table.add_row(
            field.name,
            field.label,
            field.data_type.value,
            "key" if field.key else "",
            "yes" if field.nullable else "no",
            field.semantic_type.value,
            str(field.level),
            field.masking.value if field.masking else "",
        )
    out.print(table)


def _lifecycle(target: ItemStatus, help_text: str) -> Callable[..., None]:
    def command(code: str, actor: Actor = "") -> None:
        from catalog.items import service as items

        with unit_of_work() as session:
            item = items.transition(session, code, target, actor or default_actor())
        out.print(f"{item.code} is now {item.status.value}.")

    command.__doc__ = help_text
    return command


catalog_app.command("submit")(_lifecycle(ItemStatus.IN_REVIEW, "Submit a draft item for review."))
catalog_app.command("publish")(_lifecycle(ItemStatus.PUBLISHED, "Publish an item that is in review."))
catalog_app.command("withdraw")(_lifecycle(ItemStatus.DRAFT, "Send an item in review back to draft."))
catalog_app.command("retire")(_lifecycle(ItemStatus.RETIRED, "Retire a published item."))


INGEST_EXIT_CODES = """Exit codes: 0 published, or the export was ingested before and settled (published, released,
discarded); 1 refused, nothing done (unknown item, not published, another run of the item going); 3 the export
is in quarantine (now, or since an earlier run) until an operator releases or discards it; 4 failed unexpectedly
(database, disk, a bug): logged with its traceback and recorded as a failed run, so running it again retries it."""


@app.command("ingest", epilog=INGEST_EXIT_CODES)
def ingest(
    item_code: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_json: AsJson = False,
    trigger: Annotated[str, typer.Option(help="Who or what runs it, recorded with the batch.")] = "",
) -> None:
    """Run the ingestion path once for one export: publish a new version or quarantine the batch."""
    from catalog.ingest.third_party import loading_for_good

    with loading_for_good():  # imports pandas; Great Expectations loads as it validates
        from catalog.ingest.exports import export_at
        from catalog.ingest.service import run_ingest

    data_dir = _settings().resolved_data_dir
    with _ingestion(item_code) as engine:
        outcome = run_ingest(
            engine, item_code, export_at(file), file.name, raw_dir=_settings().raw_store,
            reports_dir=data_dir / "reports", trigger=trigger or default_actor(),
            stale_after=timedelta(hours=_settings().ingest_run_timeout_hours),
        )  # fmt: skip
    _report_outcome(item_code, outcome, as_json)


@app.command("pull", epilog=INGEST_EXIT_CODES)
def pull(item_code: str, as_json: AsJson = False) -> None:
    """Pull an item's newest export from its source system and ingest it (what its DAG runs)."""
    from catalog.ingest.third_party import loading_for_good

    with loading_for_good():
        from catalog.ingest.runner import pull_and_ingest

    with _ingestion(item_code) as engine:
        outcome = pull_and_ingest(engine, _settings(), item_code, trigger=default_actor())
    if outcome is None:
        out.print(f"{item_code}: no export in the drop folder.")
    else:
        _report_outcome(item_code, outcome, as_json)


@contextmanager
def _ingestion(item_code: str) -> Iterator[Engine]:
    """An ingestion run's edge: a refusal exits 1 with its message, an unexpected error (already logged with its
    traceback by the service) exits 4."""
    from catalog.ingest.third_party import quiet_third_party_logging

    quiet_third_party_logging()
    engine = _engine()
    try:
        yield engine
    except DomainError as error:
        err.print(error.message, style="red")
        raise typer.Exit(1) from None
    except Exception as error:
        err.print(f"{item_code}: the ingestion failed ({type(error).__name__}); the run is recorded as failed and the "
                  "current version is unchanged. Run it again once the cause is fixed.", style="red")  # fmt: skip
        raise typer.Exit(4) from None
    finally:
        engine.dispose()


def _report_outcome(item_code: str, outcome: IngestOutcome, as_json: bool) -> None:
    """The same report for `ingest` and `pull`; an export in quarantine exits 3."""
    from catalog.ingest.service import changes_said  # loaded already: the run was made with it

    if as_json:
        typer.echo(json.dumps(outcome.as_dict(), ensure_ascii=False, indent=2))
    elif outcome.outcome == "published" and outcome.changes:
        out.print(f"{item_code}: published version {outcome.version} incrementally: {changes_said(outcome.changes)}.")
    elif outcome.outcome == "published":
        out.print(f"{item_code}: published version {outcome.version} with {outcome.rows_accepted} rows.")
    elif outcome.awaits_operator and outcome.outcome == "duplicate":
        out.print(f"{item_code}: this export (sha256 {outcome.sha256[:12]}…) was quarantined as batch "
                  f"{outcome.batch_id} and awaits an operator: `datashare quarantine release {outcome.batch_id} "
                  f"--reason …` or `datashare quarantine discard {outcome.batch_id} --reason …`.")  # fmt: skip
    elif outcome.outcome == "duplicate":
        out.print(f"{item_code}: this export (sha256 {outcome.sha256[:12]}…) was ingested before; nothing changed.")
    else:
        out.print(f"{item_code}: quarantined batch {outcome.batch_id}; the current version is unchanged.")
    if not as_json:
        for reason in outcome.reasons:
            out.print(f"  - {reason}")
    if outcome.awaits_operator:
        raise typer.Exit(3)


@quarantine_app.command("list")
def quarantine_list(item_code: Annotated[str | None, typer.Argument()] = None, as_json: AsJson = False) -> None:
    """Quarantined batches (of one item, or all), oldest first, with their reasons."""
    from catalog.ingest.service import quarantined_batches

    with unit_of_work() as session:
        batches = quarantined_batches(session, item_code)
    if as_json:
        typer.echo(json.dumps(batches, ensure_ascii=False, indent=2))
        return
    for batch in batches:
        out.print(f"batch {batch['batch']}  {batch['item']}  {batch['started_at']}")
        for reason in batch["reasons"]:
            out.print(f"  - {reason}")
    out.print(f"{len(batches)} quarantined batch(es).")


@app.command("runs")
def runs(
    item_code: Annotated[str | None, typer.Argument()] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    as_json: AsJson = False,
    department: Annotated[str | None, typer.Option(help="Only the runs of this department's items.")] = None,
    outcome: Annotated[
        list[str] | None,
        typer.Option(
            help="Only runs with this outcome (repeatable): running, published, quarantined, released, "
            "discarded, failed, interrupted."
        ),
    ] = None,
    since: Annotated[datetime | None, typer.Option(help="Started at or after this time (no zone: UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Started before this time (no zone: UTC).")] = None,
    before: Annotated[int | None, typer.Option(help="Continue a listing: the batch id it printed.")] = None,
) -> None:
    """Ingestion run records (of one item, or all): outcome, export file, trigger, time, rows, version, reasons.

    Rows not published are those that failed a rule and those refused with their (quarantined) batch. A run whose
    process is gone is shown (and recorded) as interrupted. The same filters and pages as the API's GET /runs."""
    from catalog.access import policy
    from catalog.ingest.runs import Page, RunFilter, run_page, settle_dead_runs

    try:
        wanted = RunFilter.model_validate({"item": item_code, "department": department, "outcomes": outcome or (),
                                           "since": since, "until": until})  # fmt: skip
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise typer.BadParameter(problems) from None
    with unit_of_work() as session:
        settle_dead_runs(session, stale_after=timedelta(hours=_settings().ingest_run_timeout_hours))
    with unit_of_work() as session:
        page = run_page(session, wanted, Page(before, limit), visible_to=policy.EVERYWHERE)
    records = page.runs
    if as_json:
        typer.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    table = Table("batch", "item", "outcome", "started", "seconds", "read", "accepted", "failed rules",
                  "refused with batch", "version", "by")  # fmt: skip
    for record in records:
        seconds, failed, refused = record["seconds"], record["rows_failed_rules"], record["rows_refused_with_batch"]
        table.add_row(
            str(record["batch"]), record["item"], record["outcome"], record["started_at"][:19],
            "" if seconds is None else f"{seconds:.1f}", str(record["rows_read"]), str(record["rows_accepted"]),
            "" if failed is None else str(failed), "" if refused is None else str(refused),
            str(record["version"] or ""), record["trigger"],
        )  # fmt: skip
    out.print(table)
    for record in records:
        where = f" on {record['host']} (pid {record['pid']})" if record["host"] else ""
        out.print(f"batch {record['batch']}: file {record['file_name']}{where}")
        for reason in record["reasons"]:
            out.print(f"batch {record['batch']}: {reason}")
    if page.next_cursor is not None:
        out.print(f"next page: --before {page.next_cursor}")


@app.command("quality-report")
def quality_report(
    batch_id: int,
    rows: Annotated[bool, typer.Option("--rows", help="Every failing row as CSV (row,field,rule).")] = False,
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of printing.")] = None,
) -> None:
    """A batch's quality report: each check's outcome, counts, first failing rows and masked examples (JSON); with
    --rows every failing row of every check, however many (no values)."""
    from catalog.ingest.failing_rows import read_failing_rows
    from catalog.ingest.models import IngestBatch
    from catalog.ingest.quarantine import BatchNotFound

    with unit_of_work() as session:
        batch = session.get(IngestBatch, batch_id)
        if batch is None:
            raise BatchNotFound(f"ingest batch {batch_id} does not exist")
        summary = json.dumps(batch.report, ensure_ascii=False, indent=2).encode() + b"\n"
        blocks = read_failing_rows(batch.failing_rows_path, batch.failing_rows_sha256) if rows else iter([summary])
    if output is None:
        for block in blocks:
            typer.echo(block, nl=False)
        return
    with output.open("wb") as target:
        for block in blocks:
            target.write(block)
    err.print(f"Wrote the {'failing rows' if rows else 'quality report'} of batch {batch_id} to {output}.")


Reason = Annotated[str, typer.Option("--reason", help="Why: recorded with the decision.")]


@quarantine_app.command("release")
def quarantine_release(
    batch_id: int,
    reason: Reason,
    actor: Actor = "",
    force: Annotated[bool, typer.Option(help="Release even though a newer version was published.")] = False,
) -> None:
    """Publish a quarantined batch despite its quality report (a recorded override)."""
    from catalog.ingest.quarantine import release_batch
    from catalog.ingest.service import changes_said

    with unit_of_work() as session:
        outcome = release_batch(session, batch_id, actor or default_actor(), reason, force=force)
    released = f"{outcome.item}: batch {batch_id} released as version {outcome.version}"
    if outcome.changes:  # an incremental export's rows are changes, not the version's size
        out.print(f"{released} incrementally: {changes_said(outcome.changes)}.")
    else:
        out.print(f"{released} ({outcome.rows_accepted} rows).")


@quarantine_app.command("discard")
def quarantine_discard(batch_id: int, reason: Reason, actor: Actor = "") -> None:
    """Close a quarantined batch without publishing it (the raw export and report are kept)."""
    from catalog.ingest.quarantine import discard_batch

    with unit_of_work() as session:
        outcome = discard_batch(session, batch_id, actor or default_actor(), reason)
    out.print(f"{outcome.item}: batch {batch_id} discarded.")


# --- classification review ---------------------------------------------------------------------------------


def _principal(session: Session, username: str, action: str, department: str | None = None) -> Principal:
    """The named user, whom the Casbin policy lets do ``action`` on classification (for ``department``, else
    everywhere)."""
    from catalog.access import policy
    from catalog.access.service import acting_user

    return acting_user(session, username, department or policy.EVERYWHERE, "classification", action)


def _fail(message: str) -> NoReturn:
    err.print(message, style="red")
    raise typer.Exit(1)


FINDINGS = ", ".join(["any", *(member.value for member in SemanticType)])


@review_app.command("queue")
def review_queue(
    department: Annotated[str | None, typer.Option(help="Provider department code.")] = None,
    semantic_type: Annotated[SemanticType | None, typer.Option(help="The field's semantic type.")] = None,
    level: Annotated[int | None, typer.Option(help="The field's current level.")] = None,
    finding: Annotated[
        str | None, typer.Option(help="Only fields with an open detection proposal of this type, or any.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, oldest first.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="How many to skip.")] = 0,
    as_json: AsJson = False,
) -> None:
    """Fields waiting for a data officer, oldest first, with their open proposals."""
    from catalog.classification import review

    if finding is not None and finding != "any" and finding not in {member.value for member in SemanticType}:
        raise typer.BadParameter(f"{finding!r} is not one of {FINDINGS}", param_hint="--finding")
    wanted = review.QueueFilter(department=department, semantic_type=semantic_type.value if semantic_type else None,
                                level=level, finding=finding, limit=limit, offset=offset)  # fmt: skip
    with unit_of_work() as session:
        total, entries = review.queue(session, wanted)
    if as_json:
        payload = {"total": total, "entries": [dataclasses.asdict(entry) for entry in entries]}
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_value))
        return
    table = Table("waiting since", "department", "item", "status", "field", "label", "level", "semantic",
                  "suggested", "proposals")  # fmt: skip
    for entry in entries:
        table.add_row(
            f"{entry.waiting_since:%Y-%m-%d %H:%M}", entry.department, entry.item, entry.item_status, entry.field,
            entry.label, str(entry.level), entry.semantic_type,
            "" if entry.suggested_level is None else str(entry.suggested_level),
            "; ".join(_describe_proposal(proposal) for proposal in entry.proposals),
        )  # fmt: skip
    out.print(table)
    shown = f"{offset + 1}-{offset + len(entries)}" if entries else "none"
    out.print(f"{total} field(s) waiting; showing {shown}.")


@review_app.command("items")
def review_items(
    department: Annotated[str | None, typer.Option(help="Provider department code.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, oldest first.")] = 100,
    as_json: AsJson = False,
) -> None:
    """Items with fields waiting for a data officer, oldest first."""
    from catalog.classification import review

    with unit_of_work() as session:
        total, entries = review.pending_items(session, review.QueueFilter(department=department, limit=limit))
    if as_json:
        payload = {"total": total, "entries": [dataclasses.asdict(entry) for entry in entries]}
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_value))
        return
    table = Table("waiting since", "department", "item", "status", "pending fields", "with proposals")
    for entry in entries:
        table.add_row(f"{entry.waiting_since:%Y-%m-%d %H:%M}", entry.department, entry.item, entry.item_status,
                      str(entry.pending_fields), str(entry.with_proposals))  # fmt: skip
    out.print(table)
    out.print(f"{total} item(s) with fields waiting.")


def _describe_proposal(proposal: dict[str, Any]) -> str:
    text = f"{proposal['source']}: {proposal['semantic_type']} at level {proposal['level']}"
    share = (proposal.get("evidence") or {}).get("share")
    return text + (f" ({share:.0%} of values)" if share is not None else "")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


@review_app.command("decide")
def review_decide(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    officer: Annotated[str, typer.Option(help="The data officer's username.")],
    as_json: AsJson = False,
) -> None:
    """Decide many fields at once, all or none, from a CSV or JSON file (item, field, level, semantic_type,
    reason; an empty level and semantic type approve the field as it stands)."""
    from catalog.classification import review

    decisions = read_decisions(file)
    with unit_of_work() as session:
        report = review.decide(session, decisions, _principal(session, officer, "decide"))
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))
        return
    out.print(
        f"Decided {report.decided} field(s): {report.changed} changed, {len(report.raised)} raised; "
        f"{report.subscriptions_masked} subscription(s) masked, {report.notifications} notification(s)."
    )
    for change in report.raised:
        out.print(f"  raised {change.item}.{change.field}: level {change.from_level} -> {change.to_level}")


DECISION_COLUMNS = ("item", "field", "level", "semantic_type", "reason")


def read_decisions(file: Path) -> list[review.FieldDecision]:
    """The decisions of a CSV file (a header row with item and field, and any of level, semantic_type, reason)
    or a JSON file (a list of such objects, or {"decisions": [...]}); every problem named with its row."""
    from catalog.classification import review

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        _fail(f"{file}: not UTF-8 text; save the file as UTF-8 (CSV UTF-8 in a spreadsheet)")
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            _fail(f"{file}: not JSON: {error}")
        rows = data.get("decisions") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            _fail(f"{file}: expected a list of decisions (objects with item, field, level, semantic_type, reason)")
        first_row = 1
    else:
        reader = csv.DictReader(io.StringIO(text))
        unknown = [name for name in reader.fieldnames or [] if name not in DECISION_COLUMNS]
        if unknown or not {"item", "field"} <= set(reader.fieldnames or []):
            _fail(f"{file}: the header must name item and field, and may name level, semantic_type and reason"
                  + (f"; unknown column(s): {', '.join(unknown)}" if unknown else ""))  # fmt: skip
        rows = [{name: value for name, value in row.items() if value not in (None, "")} for row in reader]
        first_row = 2  # the header is row 1
    decisions, problems = [], []
    for number, row in enumerate(rows, start=first_row):
        try:
            decisions.append(review.FieldDecision.model_validate(row))
        except ValidationError as error:
            details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in error.errors())
            problems.append(f"row {number}: {details}")
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        _fail(f"{file}: nothing was decided: " + "; ".join(problems[:10]) + more)
    if not decisions:
        _fail(f"{file}: no decisions in the file")
    return decisions


@review_app.command("propose")
def review_propose(
    item_code: Annotated[str, typer.Argument(metavar="ITEM")],
    field_name: Annotated[str, typer.Argument(metavar="FIELD")],
    level: Annotated[int, typer.Option(help="The proposed level.")],
    reason: Reason,
    steward: Annotated[str, typer.Option(help="The username of a steward of the item's department.")],
    semantic_type: Annotated[SemanticType | None, typer.Option(help="The proposed semantic type.")] = None,
) -> None:
    """A steward proposes a level (and semantic type) for a field of their department's item."""
    from sqlalchemy import select

    from catalog.classification import review
    from catalog.departments.models import Department
    from catalog.items.errors import ItemNotFound
    from catalog.items.models import CatalogItem

    try:
        body = review.ProposalCreate(item=item_code, field=field_name, level=level, semantic_type=semantic_type,
                                     reason=reason)  # fmt: skip
    except ValidationError as error:
        raise typer.BadParameter("; ".join(e["msg"] for e in error.errors())) from None
    with unit_of_work() as session:
        department = session.scalar(
            select(Department.code)
            .join(CatalogItem, CatalogItem.department_id == Department.id)
            .where(CatalogItem.code == item_code)
        )
        if department is None:
            raise ItemNotFound(item_code)
        proposal_id = review.propose(session, body, _principal(session, steward, "propose", department))
    out.print(f"Proposal {proposal_id}: {item_code}.{field_name} at level {level}; the field awaits a data officer.")


@review_app.command("history")
def review_history(item_code: Annotated[str, typer.Argument(metavar="ITEM")], as_json: AsJson = False) -> None:
    """Every decision on an item's fields, oldest first: who, when, from, to, why."""
    from sqlalchemy import select

    from catalog.classification import review
    from catalog.items.errors import ItemNotFound
    from catalog.items.models import CatalogItem

    with unit_of_work() as session:
        if session.scalar(select(CatalogItem.id).where(CatalogItem.code == item_code)) is None:
            raise ItemNotFound(item_code)
        decisions = review.history(session, item_code)
    if as_json:
        typer.echo(json.dumps(decisions, ensure_ascii=False, indent=2, default=_json_value))
        return
    table = Table("decision", "decided at", "by", "field", "level", "semantic type", "suggested", "reason")
    for decision in decisions:
        level, semantic = str(decision["to_level"]), decision["to_semantic_type"]
        if decision["from_level"] != decision["to_level"]:
            level = f"{decision['from_level']} -> {level}"
        if decision["from_semantic_type"] != decision["to_semantic_type"]:
            semantic = f"{decision['from_semantic_type']} -> {semantic}"
        table.add_row(
            str(decision["id"]), f"{decision['decided_at']:%Y-%m-%d %H:%M:%S}", decision["decided_by"],
            decision["field"], level, semantic,
            "" if decision["suggested_level"] is None else str(decision["suggested_level"]), decision["reason"] or "",
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(decisions)} decision(s) on {item_code}.")


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@review_app.command("report")
def review_report(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(REPORTS)}.")],
    department: Annotated[str | None, typer.Option(help="Only this department's items.")] = None,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="json or csv.")] = ReportFormat.CSV,
    output: Annotated[Path | None, typer.Option(help="Write to this file instead of printing.")] = None,
) -> None:
    """A classification report: levels (fields per level per department), unreviewed (fields never decided),
    proposals (open ones, with detection evidence), decisions (per officer per day)."""
    from catalog.classification import reports

    with unit_of_work() as session:
        rows = reports.build(session, name, department)
    if output_format is ReportFormat.CSV:
        text = reports.to_csv(rows)
    else:
        text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"Wrote {len(rows)} row(s) of report {name} to {output}.")


SAMPLES = demo_files.SAMPLES  # synthetic exports of the demo departments' systems (python -m catalog.demo.generate)


@app.command("demo")
def demo(
    samples: Annotated[Path, typer.Option(help="Sample exports to put into the demo drop folders.")] = SAMPLES,
    catalog: Annotated[Path, typer.Option(help="The catalog file; the demo's data officer imports it.")] = DEMO_CATALOG,
) -> None:
    """Set up the embedded default: schema, demo catalog, principals, sample exports in their drop folders. Run
    again, it only creates what is missing: whatever is there already (a department an admin changed, a field an
    officer decided, a token, a file in a drop folder) stays as it is."""
    from catalog.access.demo import SEEDED_BY, seed_demo_principals
    from catalog.declarations import service as declarations
    from catalog.ingest.manifest import rewrite_after_commit
    from catalog.items import service as items
    from catalog.items.schemas import SearchQuery

    settings = _settings()
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    db_upgrade()
    declared = declarations.read_catalog_file(catalog)
    with unit_of_work() as session:  # the departments first: the demo's people belong to them
        _import_missing(session, declared.model_copy(update={"items": []}), SEEDED_BY)
        credentials = seed_demo_principals(session, settings.resolved_data_dir)
        new = _import_missing(session, declared.model_copy(update={"departments": []}),
                              _principal(session, DEMO_OFFICER, "decide"))  # fmt: skip
        rewrite_after_commit(session)  # written whole even when nothing changed
    out.print(f"Imported {catalog}: {new} items created by the demo's data officer ({DEMO_OFFICER}); "
              f"{len(declared.items) - new} already there.")  # fmt: skip
    with unit_of_work() as session:
        copied = _fill_drop_folders(session, samples, settings.resolved_data_dir)
        _print_page(items.search(session, SearchQuery(page_size=100)))
    out.print(f"Sample exports placed in drop folders: {copied}.")
    out.print(f"Demo users' passwords and the departments' machine tokens: {credentials}")
    out.print(f"Data folder: {settings.resolved_data_dir}. Try: datashare catalog search 人口")


def _import_missing(session: Session, declared: CatalogFile, actor: Principal | str) -> int:
    """Import the departments and items of ``declared`` the database does not have; returns how many items. Those
    it has are left alone: an import would bring the file back over later decisions as a change."""
    from sqlalchemy import select

    from catalog.access.service import Principal
    from catalog.declarations import service as declarations
    from catalog.departments.models import Department
    from catalog.items import repository as items_repository

    have_departments = set(session.scalars(select(Department.code)))
    have_items = set(items_repository.statuses_by_code(session, [item.code for item in declared.items]))
    missing = declared.model_copy(update={
        "departments": [department for department in declared.departments if department.code not in have_departments],
        "items": [item for item in declared.items if item.code not in have_items],
    })  # fmt: skip
    declarations.import_catalog(session, missing, actor, by_officer=isinstance(actor, Principal))
    return len(missing.items)


def _fill_drop_folders(session: Session, samples: Path, data_dir: Path) -> int:
    """Copy each sample export matching a file-drop source system's pattern into its folder (once)."""
    from sqlalchemy import select

    from catalog.departments.models import SourceSystem

    copied = 0
    for source in session.scalars(select(SourceSystem).where(SourceSystem.access == "file_drop")):
        folder = data_dir / source.location
        for sample in sorted(samples.glob(source.file_pattern or "*")) if samples.is_dir() else []:
            target = folder / sample.name
            if not target.exists():
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sample, target)
                copied += 1
    return copied


# Command groups kept in modules of their own; they use this module's helpers, so they are imported last. Those in
# DEFERRED_GROUPS (above) are imported only when one of their commands runs: `datashare --help` stays fast.
from catalog.ops.commands import FRESHNESS_EXIT_CODES, freshness  # noqa: E402

app.command("freshness", epilog=FRESHNESS_EXIT_CODES)(freshness)

if __name__ == "__main__":
    app()
