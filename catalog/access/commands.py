"""``datashare policy …``: the Casbin policy and the grants it rests on, from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

# Defined before the command line's helpers are imported: ``catalog.cli`` imports this module (for ``policy_app``)
# at its end, whichever of the two is imported first.
policy_app: typer.Typer = typer.Typer(help="Access policy: drift checks.", no_args_is_help=True)

from catalog.access import drift  # noqa: E402
from catalog.access.policy import EVERYWHERE  # noqa: E402
from catalog.audit import service as audit  # noqa: E402
from catalog.cli import AsJson, err, out, unit_of_work  # noqa: E402
from catalog.errors import DomainError  # noqa: E402
from catalog.settings import get_settings  # noqa: E402

FOUND, REFUSED = 1, 2  # exit codes: drift found; the named person may not check (0: nothing found)
Officer = Annotated[
    str,
    typer.Option(help="The username of a data officer (or platform admin): the check runs, and is audited, as them."),
]


@policy_app.command("check")
def check(officer: Officer, as_json: AsJson = False) -> None:
    """List Casbin rules and role bindings no current user, token or department explains, active subscriptions
    whose item, fields or consumer are gone, and grants above their fields' approved levels or recorded decisions.
    Exit code 0: nothing found; 1: drift found; 2: the named person may not check. Reads only (one audit row)."""
    refusal: DomainError | None = None
    with unit_of_work() as session:
        try:
            principal = drift.checker(session, officer)
        except (drift.CheckerNotFound, drift.CheckForbidden) as error:  # audited as the API's guard audits refusals
            audit.record(session, f"user:{officer}", None, ".".join(drift.PERMISSION), "denied",
                         reason=error.code, on_behalf_of=EVERYWHERE)  # fmt: skip
            refusal = error
        else:
            report = drift.check(session, drift.DriftRules.of(get_settings()), principal)
    if refusal is not None:
        err.print(refusal.message, style="red")
        raise typer.Exit(REFUSED)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print(report)
    if report.total:
        raise typer.Exit(FOUND)


def _print(report: drift.DriftReport) -> None:
    """One line per finding (its kind, then what it names), never wrapped, so that grep and diff work on it."""
    for finding in report.findings:
        out.print(f"{finding.kind.value}: {finding.message}")
    counts = ", ".join(f"{kind} {count}" for kind, count in report.by_kind.items())
    out.print(
        f"{report.total} finding(s) in {report.rules_checked} rule(s) and binding(s) and "
        f"{report.subscriptions_checked} active subscription(s)" + (f": {counts}." if counts else ".")
    )
