"""Utilisation in the console: the figures of ``GET /utilisation`` (the platform's and every department's, for data
officers, ops and platform admins) or of ``GET /utilisation/departments/{code}`` (a department's stewards and users:
their own), the most used items with the consumers the person may know of, and a chart of each department's share
of published items used per month over the last twelve months. Who sees what is the API's rule: the same guard, the
same ``utilisation read`` permission, the same ``subscriptions.may_know``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import partial

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from api.console import charts
from api.console.lookups import department_names
from api.console.web import PREFIX, Page, PageDep
from api.routers.subscriptions import may_know
from api.routers.utilisation import READ, readable
from catalog.access.policy import EVERYWHERE
from catalog.departments.schemas import CODE_PATTERN
from catalog.errors import NotFound
from catalog.utilisation import figures, history
from catalog.utilisation.schemas import UtilisationHistory

router = APIRouter()
MONTHS = 12
CELL_HEIGHT = charts.BAR
ROW_STEP = charts.BAR + charts.GAP
CELL_WIDTH = (charts.WIDTH - charts.LABEL) / MONTHS


@dataclass(frozen=True)
class Cell:
    month: date
    x: float
    share: float | None
    used: int
    published: int


@dataclass(frozen=True)
class HeatRow:
    label: str
    y: float
    cells: list[Cell]


@dataclass(frozen=True)
class Heat:
    """Departments (rows) by month (columns), each cell as dark as the share of published items used."""

    rows: list[HeatRow]
    months: list[date]
    height: float
    cell_width: float = CELL_WIDTH
    cell_height: float = CELL_HEIGHT


def heat(found: UtilisationHistory) -> Heat:
    rows = []
    for index, entry in enumerate(found.departments):
        cells = [Cell(period.month, charts.LABEL + column * CELL_WIDTH, period.share_used, period.used_items,
                      period.published_items) for column, period in enumerate(entry.periods)]  # fmt: skip
        rows.append(HeatRow(entry.department, index * ROW_STEP, cells))
    months = [period.month for period in found.departments[0].periods] if found.departments else []
    return Heat(rows, months, max(len(rows) * ROW_STEP, ROW_STEP) + 20)


@router.get("/utilisation", response_model=None)
def utilisation(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/utilisation")
    asked = page.request.query_params.get("department", "").strip()
    everywhere = page.guard.allows(EVERYWHERE, *READ)
    code = asked if everywhere and re.fullmatch(CODE_PATTERN, asked) and len(asked) <= 32 else None
    if not everywhere:
        code = str(page.principal.department)
        if not page.guard.allows(code, *READ):
            page.guard.refused("utilisation.read")
            return page.render("error.html", 403, message=page.t("Your roles do not allow this."))
    return _render(page, code, everywhere)


def _render(page: Page, code: str | None, everywhere: bool) -> HTMLResponse:
    rule = partial(may_know, page.guard)
    try:
        found = figures.platform(page.session, rule) if code is None else figures.department(page.session, code, rule)
    except NotFound:
        page.session.rollback()
        return page.render("error.html", 404, message=page.t("There is no such department."))
    over_time = history.history(page.session, readable(page.guard, code), MONTHS)
    return page.render("utilisation.html", found=found, department=code, everywhere=everywhere,
                       names=department_names(page), chart=heat(over_time), width=charts.WIDTH,
                       label_width=charts.LABEL)  # fmt: skip
