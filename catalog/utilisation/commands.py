"""``datashare usage``: the utilisation figures from the command line, as a named user (``--as``) whom the policy
lets read them, as ``GET /utilisation`` serves them: the platform's (``show``), a department's (``show
--department``), per month (``history``); ``fold`` folds the audit trail into the rollups at once (after an upgrade
of a large trail, so that the first computation need not)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from catalog.cli import AsJson, out, unit_of_work

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from catalog.utilisation.figures import MayKnow
    from catalog.utilisation.schemas import (
        DepartmentFigures,
        DepartmentUtilisation,
        ItemUse,
        PlatformUtilisation,
        ProviderFigures,
    )

usage_app = typer.Typer(help="Utilisation figures: platform, departments, months.", no_args_is_help=True)
AsUser = Annotated[str, typer.Option("--as", help="The user the figures are read for (the policy decides which).")]
Department = Annotated[str | None, typer.Option(help="This department's figures (default: the platform's).")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print CSV (as GET /utilisation?format=csv).")]


@usage_app.command("show")
def show(
    as_user: AsUser,
    department: Department = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="The window: this many UTC days, ending today.")] = 30,
    top: Annotated[int, typer.Option(min=1, max=100, help="How many of the most used items.")] = 10,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """The platform's figures and every department's (data officers, ops, platform admins), or one department's as
    provider and as consumer (its stewards and users too). Consumers are named only to those who may know of their
    subscriptions."""
    from catalog.utilisation import export, figures
    from catalog.utilisation.schemas import PlatformUtilisation

    with unit_of_work() as session:
        may_know = _reader(session, as_user, department)
        if department is None:
            found: PlatformUtilisation | DepartmentUtilisation = figures.platform(session, may_know, days, top)
        else:
            found = figures.department(session, department, may_know, days, top)
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
    elif as_csv:
        text = export.platform_csv(found) if isinstance(found, PlatformUtilisation) else export.department_csv(found)
        typer.echo(text, nl=False)
    else:
        _print(found)


@usage_app.command("history")
def history_command(
    as_user: AsUser,
    department: Department = None,
    months: Annotated[int, typer.Option(min=1, max=36, help="This many calendar months, ending with this one.")] = 12,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
) -> None:
    """Per department and month: its published items that existed then, how many were used, the share."""
    from catalog.utilisation import export, history

    with unit_of_work() as session:
        _reader(session, as_user, department)
        found = history.history(session, None if department is None else [department], months)
    if as_json or as_csv:
        typer.echo(found.model_dump_json(indent=2) if as_json else export.history_csv(found), nl=not as_csv)
        return
    for entry in found.departments:
        shares = " ".join(f"{period.month:%Y-%m}={_share(period.share_used)}" for period in entry.periods)
        out.print(f"{entry.department}\t{shares}")


@usage_app.command("fold")
def fold_command() -> None:
    """Fold every audit event that is safe to fold into the usage rollups now."""
    from catalog.utilisation.fold import fold

    with unit_of_work() as session:
        folded = fold(session)
    out.print(f"folded {folded.events} audit event(s); the rollups now reach event {folded.folded_to}")


def _reader(session: Session, username: str, department: str | None) -> MayKnow:
    """The user, if the policy lets them read these figures (the platform's: everywhere), and whom they may know
    of as consumers: as the API's ``subscriptions.may_know`` decides it."""
    from catalog.access.policy import EVERYWHERE, PolicyEnforcer
    from catalog.access.service import acting_user

    principal = acting_user(session, username, department or EVERYWHERE, "utilisation", "read")
    enforcer = PolicyEnforcer()
    enforcer.refresh(session)
    own = principal.department

    def may_know(consumer: str, provider: str) -> bool:
        if own in (consumer, provider) and enforcer.allows(principal.subject, str(own), "subscription", "read"):
            return True
        return enforcer.allows(principal.subject, EVERYWHERE, "subscription", "decide_officer")

    return may_know


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _print(found: PlatformUtilisation | DepartmentUtilisation) -> None:
    out.print(f"Utilisation over the last {found.days} day(s), since {found.since}:")
    from catalog.utilisation.schemas import PlatformUtilisation

    if isinstance(found, PlatformUtilisation):
        _provider_line("platform", found.platform)
        shown = found.departments
    else:
        shown = [found.figures]
    for entry in shown:
        _department_lines(entry)
    _items(found.top_items)


def _provider_line(name: str, figures: ProviderFigures) -> None:
    uses, requests = figures.uses, figures.requests
    median = "-" if requests.median_hours_to_active is None else f"{requests.median_hours_to_active:g} h"
    out.print(f"{name}\tprovider: {figures.published_items} published, {_share(figures.share_subscribed)} subscribed, "
              f"{_share(figures.share_used)} used; {uses.reads} reads ({uses.rows_read} rows), {uses.verifications} "
              f"look-ups, {uses.deliveries} deliveries ({uses.rows_delivered} rows); {requests.made} requests, "
              f"median to active {median}")  # fmt: skip


def _department_lines(entry: DepartmentFigures) -> None:
    _provider_line(entry.department, entry.as_provider)
    consumer = entry.as_consumer
    out.print(f"{entry.department}\tconsumer: {consumer.active_subscriptions} active subscriptions, "
              f"{consumer.items_used} items used, {consumer.uses.reads} reads ({consumer.uses.rows_read} rows), "
              f"{consumer.uses.verifications} look-ups, {consumer.uses.deliveries} deliveries")  # fmt: skip


def _items(items: list[ItemUse]) -> None:
    if items:
        out.print("Most used items:")
    for rank, item in enumerate(items, 1):
        consumers = ", ".join(f"{c.department or 'anonymous'} {c.uses.total}" for c in item.consumers)
        out.print(f"{rank}\t{item.item}\t{item.title}\t{item.uses.total} uses\t{consumers}")
