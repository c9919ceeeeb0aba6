"""Utilisation figures over HTTP: the platform's and every department's (data officers, ops and platform admins:
``utilisation read`` everywhere), one department's as provider and as consumer (its stewards and users too), and
each department's share of items used per month. The consumers of an item are shown to those who may know of their
subscriptions (``subscriptions.may_know``). JSON, or CSV with ``?format=csv`` or ``Accept: text/csv``. Refusals are
audited by the guard."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.deps import Guard, GuardDep, SessionDep
from api.routers.subscriptions import may_know
from catalog.access.policy import EVERYWHERE
from catalog.departments.schemas import CODE_PATTERN
from catalog.utilisation import export, figures, history
from catalog.utilisation.figures import MAX_DAYS, MAX_TOP
from catalog.utilisation.history import MAX_MONTHS
from catalog.utilisation.schemas import DepartmentUtilisation, PlatformUtilisation, UtilisationHistory

router = APIRouter(tags=["utilisation"])
READ = ("utilisation", "read")
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="The window: this many UTC days, ending today.")]
Top = Annotated[int, Query(ge=1, le=MAX_TOP, description="How many of the most used items.")]
Format = Annotated[
    Literal["json", "csv"] | None, Query(alias="format", description="csv, or json (default: as Accept asks).")
]
Code = Annotated[str, Path(max_length=32, pattern=CODE_PATTERN)]


@router.get("/utilisation", response_model=PlatformUtilisation, responses=CSV)
def platform(
    request: Request, session: SessionDep, guard: GuardDep, days: Days = 30, top: Top = 10, output: Format = None
) -> PlatformUtilisation | Response:
    """The platform's figures (over every published item), each department's as provider and as consumer, and the
    most used items with their consumers."""
    guard.require(EVERYWHERE, *READ)
    found = figures.platform(session, partial(may_know, guard), days, top)
    return _csv(export.platform_csv(found), "utilisation") if _wants_csv(request, output) else found


@router.get("/utilisation/departments/{code}", response_model=DepartmentUtilisation, responses=CSV)
def department(
    request: Request, code: Code, session: SessionDep, guard: GuardDep, days: Days = 30, top: Top = 10,
    output: Format = None,
) -> DepartmentUtilisation | Response:  # fmt: skip
    """A department's figures as provider (its published items) and as consumer (what its people and systems used),
    its most used items, the items it used most and each of its published items' uses (the CSV's rows)."""
    guard.require(code, *READ)
    with guard.refusals_audited("utilisation.read", of_department=code):
        found = figures.department(session, code, partial(may_know, guard), days, top)
    return _csv(export.department_csv(found), f"utilisation-{code}") if _wants_csv(request, output) else found


@router.get("/utilisation/history", response_model=UtilisationHistory, responses=CSV)
def over_time(
    request: Request, session: SessionDep, guard: GuardDep,
    department: Annotated[str | None, Query(max_length=32, pattern=CODE_PATTERN,
                                            description="Only this department.")] = None,
    months: Annotated[int, Query(ge=1, le=MAX_MONTHS, description="This many calendar months, ending with this one.")]
    = 12, output: Format = None,
) -> UtilisationHistory | Response:  # fmt: skip
    """Per department and month, its items published now that existed then, and how many of them were used: every
    department for those who read the platform's figures, else the caller's own."""
    wanted = readable(guard, department)
    with guard.refusals_audited("utilisation.read", of_department=department):
        found = history.history(session, wanted, months)
    return _csv(export.history_csv(found), "utilisation-history") if _wants_csv(request, output) else found


def readable(guard: Guard, department: str | None) -> list[str] | None:
    """The departments whose figures the caller reads (None: every one); refused (401, 403) otherwise."""
    principal = guard.signed_in()
    if department is not None:
        guard.require(department, *READ)
        return [department]
    if guard.allows(EVERYWHERE, *READ):
        return None
    guard.require(str(principal.department), *READ)
    return [str(principal.department)]


def _wants_csv(request: Request, output: str | None) -> bool:
    return output == "csv" or (output is None and "text/csv" in request.headers.get("accept", ""))


def _csv(text: str, name: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip
