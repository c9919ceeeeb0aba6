"""Names the pages show beside codes: departments' names in both languages and items' titles (catalog metadata
every signed-in person may read; what each page lists was decided by the API before it asks for these)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select

from api.console.web import Page
from catalog.departments.models import Department
from catalog.items.models import CatalogItem


def department_names(page: Page) -> dict[str, Any]:
    """Each department's row (code, name_zh, name_en) by code, for ``labels.department``."""
    rows = page.session.execute(select(Department.code, Department.name_zh, Department.name_en))
    return {row.code: row for row in rows}


def item_titles(page: Page, codes: Collection[str]) -> dict[str, str]:
    if not codes:
        return {}
    statement = select(CatalogItem.code, CatalogItem.title).where(CatalogItem.code.in_(set(codes)))
    return {code: title for code, title in page.session.execute(statement)}
