"""``datashare audit …``: the audit trail from the command line."""

from __future__ import annotations

import getpass
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

# Defined before the command line's helpers are imported: ``catalog.cli`` imports this module (for ``audit_app``)
# at its end, whichever of the two is imported first.
audit_app: typer.Typer = typer.Typer(help="The audit trail: list, seal, verify, head.", no_args_is_help=True)

from pydantic import ValidationError  # noqa: E402
from rich.table import Table  # noqa: E402

from catalog.access.policy import EVERYWHERE  # noqa: E402
from catalog.audit import chain, heads, trail, verification  # noqa: E402
from catalog.audit import service as audit  # noqa: E402
from catalog.audit.errors import ReaderNotFound, ReadForbidden  # noqa: E402
from catalog.audit.schemas import AuditPage, AuditQuery, SealReport, VerificationRead  # noqa: E402
from catalog.audit.signing import platform_key, trusted_keys  # noqa: E402
from catalog.cli import AsJson, err, out, unit_of_work  # noqa: E402
from catalog.errors import DomainError  # noqa: E402
from catalog.settings import get_settings  # noqa: E402

FAILED, REFUSED = 1, 2  # exit codes: verification failed (or nothing sealed to show); the named person may not read
TIMES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"]
Officer = Annotated[
    str,
    typer.Option(help="The username of a data officer (or platform admin): the trail is read, and audited, as them."),
]
Time = Annotated[datetime | None, typer.Option(formats=TIMES, help="A time; without a zone, UTC.")]
Block = Annotated[int | None, typer.Option(min=1, help="A block number.")]


@audit_app.command("list")
def list_events(
    officer: Officer,
    action: Annotated[str | None, typer.Option(help="Only this action (data.read, audit.read …).")] = None,
    principal: Annotated[str | None, typer.Option(help="Only this principal (user:NAME, token:ID).")] = None,
    department: Annotated[str | None, typer.Option(help="Only this department's principals.")] = None,
    item: Annotated[str | None, typer.Option(help="Only events about this item code.")] = None,
    since: Time = None,
    until: Time = None,
    before: Annotated[int | None, typer.Option(help="Continue a listing: the next_before it printed.")] = None,
    limit: Annotated[int, typer.Option(help="Events per page (1-1000).")] = 100,
    as_json: AsJson = False,
) -> None:
    """The trail, newest first, filtered; pages on with --before. The read is audited (audit.read). Exit code 2
    when the named person may not read the trail."""
    try:
        query = AuditQuery(action=action, principal=principal, department=department, item=item, since=since,
                           until=until, before=before, limit=limit)  # fmt: skip
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise typer.BadParameter(problems) from None
    refusal: DomainError | None = None
    with unit_of_work() as session:
        try:
            reader = trail.reader(session, officer)
        except (ReaderNotFound, ReadForbidden) as error:  # audited as the API's guard audits refusals
            audit.record(session, f"user:{officer}", None, trail.READ, "denied", reason=error.code,
                         on_behalf_of=EVERYWHERE)  # fmt: skip
            refusal = error
        else:
            page = trail.page(session, query, reader)
    if refusal is not None:
        err.print(refusal.message, style="red")
        raise typer.Exit(REFUSED)
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
    else:
        _print_page(page)


def _print_page(page: AuditPage) -> None:
    table = Table("id", "at", "principal", "department", "action", "outcome", "item", "rows")
    for event in page.events:
        table.add_row(str(event.id), f"{event.at:%Y-%m-%d %H:%M:%S}", event.principal, event.department or "",
                      event.action, event.outcome, event.item_code or "",
                      "" if event.rows is None else str(event.rows))  # fmt: skip
    out.print(table)
    more = f"next page: --before {page.next_before}" if page.next_before else "no more"
    out.print(f"{len(page.events)} event(s); {more}.")


@audit_app.command("seal")
def seal(as_json: AsJson = False) -> None:
    """Seal every event that is safe to seal into signed, hash-chained blocks; append the new head to the heads
    file and the log. Events of transactions still running wait for the next seal."""
    settings = get_settings()
    with unit_of_work() as session:
        report = chain.seal(session, platform_key(settings), block_size=settings.audit_block_size,
                            wait_seconds=settings.audit_seal_wait_seconds)  # fmt: skip
    if report.head is not None:
        heads.publish(settings.resolved_audit_heads_file, report.head)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_seal(report)


def _print_seal(report: SealReport) -> None:
    if report.busy:
        out.print("Another seal is running; it seals what is safe to seal.")
    elif report.waiting:
        out.print("Transactions that may still add events are running; the next seal will seal those events.")
    else:
        out.print(f"Sealed {report.sealed_rows} event(s) into {report.sealed_blocks} block(s).")
    if report.head is not None:
        out.print(f"Head: block {report.head.block}, events to {report.head.last_id}, hash {report.head.hash}.")
    out.print(_unsealed(report.unsealed.count, report.unsealed.first_id, report.unsealed.last_id))


def _unsealed(count: int, first: int | None, last: int | None) -> str:
    return f"Unsealed: {count} event(s)" + (f" (ids {first}..{last})." if count else ".")


@audit_app.command("verify")
def verify(
    from_block: Annotated[int | None, typer.Option("--from-block", min=1, help="First block to check.")] = None,
    to_block: Annotated[int | None, typer.Option("--to-block", min=1, help="Last block to check.")] = None,
    head: Annotated[
        Path | None, typer.Option(help="A signed head kept elsewhere (the JSON of `audit head --json`; - for stdin).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Recompute every block (or a range) from its events, check links, signatures, the heads file and a given
    head; report events not sealed yet. Exit code 1 on any failure, naming the first."""
    settings = get_settings()
    with unit_of_work() as session:
        given = [] if head is None else [heads.parse(sys.stdin.read() if str(head) == "-" else head.read_text())]
        result = VerificationRead.model_validate(
            verification.verify(
                session,
                trusted_keys=trusted_keys(settings),
                heads_file=settings.resolved_audit_heads_file,
                given=given,
                from_block=from_block,
                to_block=to_block,
                by=f"cli:{getpass.getuser()}",
            )
        )
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_verification(result)
    if not result.ok:
        raise typer.Exit(FAILED)


def _print_verification(result: VerificationRead) -> None:
    checked = (f"{result.blocks_checked} block(s), {result.rows_checked} event(s) and {result.heads_checked} "
               "head(s)")  # fmt: skip
    if result.ok:
        out.print(f"Verified {checked}: OK.")
    else:
        first = result.failures[0]
        out.print(f"Verification FAILED ({checked}): {len(result.failures)} failure(s); first: {first.kind}: "
                  f"{first.message}")  # fmt: skip
        for failure in result.failures:
            out.print(f"  {failure.kind}: {failure.message}")
    if result.head_block is not None:
        out.print(f"Head: block {result.head_block}, hash {result.head_hash}.")
    out.print(_unsealed(result.unsealed_count, result.unsealed_first_id, result.unsealed_last_id))


@audit_app.command("head")
def show_head(as_json: AsJson = False) -> None:
    """The chain's newest signed head: keep it elsewhere (another department's system) and check the chain against
    it later with `audit verify --head FILE`. Exit code 1 when nothing is sealed yet."""
    with unit_of_work() as session:
        found = chain.head(session)
    if found is None:
        err.print("No audit block has been sealed yet: run `datashare audit seal`.", style="red")
        raise typer.Exit(FAILED)
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    out.print(f"Block {found.block}: events {found.first_id}..{found.last_id} ({found.row_count}), sealed "
              f"{found.sealed_at}\nhash {found.hash}\nprevious {found.previous_hash}\n"
              f"public key {found.public_key}\nsignature {found.signature}")  # fmt: skip
