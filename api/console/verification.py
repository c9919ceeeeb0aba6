"""Verification in the console: a subscriber pastes the records its department holds (CSV: a header line of field
names, then one record a line) and sees, per record, match or no match and, for a match, the granted fields masked
as the API shows them. The page calls the API's own ``POST /items/{code}/verify`` function: its checks, its limits
and its audit; the records are kept in the form, never stored."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.console.i18n import marked as _
from api.console.refusals import REFUSALS, refusal
from api.console.subscriptions import may_preview
from api.console.web import FormDep, Page, PageDep
from api.routers import data as data_api
from catalog.delivery.verification import MAX_RECORDS

router = APIRouter()
MAX_TEXT = 200_000  # characters pasted: 1,000 records of a few fields


FORMAT = _("Give a header line of field names, then one record a line (at most %(count)s).")


def may_verify(page: Page, code: str) -> bool:
    return may_preview(page, code, verifying=True)


@router.get("/items/{code}/verify", response_class=HTMLResponse)
def verify_form(code: str, page: PageDep) -> HTMLResponse:
    if not may_verify(page, code):
        return page.render("error.html", 404, message=page.t("There is no such item, or it is not yours to see."))
    return page.render("verify.html", code=code, typed="", found=None, error=None, max_records=MAX_RECORDS)


@router.post("/items/{code}/verify", response_class=HTMLResponse)
def verify_submitted(code: str, page: PageDep, form: FormDep) -> HTMLResponse:
    typed = form.get("records", "")[:MAX_TEXT]
    if not may_verify(page, code):
        return page.render("error.html", 404, message=page.t("There is no such item, or it is not yours to see."))
    records = _records(typed)
    if not records:
        error = page.t(FORMAT, count=MAX_RECORDS)
        return page.render("verify.html", 422, code=code, typed=typed, found=None, error=error, max_records=MAX_RECORDS)
    try:
        asked = data_api.VerifyRequest.model_validate({"records": records})
        found = data_api.verified(code, asked, page.session, page.guard)
    except REFUSALS as refused:
        page.session.rollback()
        error = page.t(FORMAT, count=MAX_RECORDS) if isinstance(refused, ValidationError) else refusal(page, refused)
        return page.render("verify.html", 422, code=code, typed=typed, found=None, error=error, max_records=MAX_RECORDS)
    return page.render("verify.html", code=code, typed=typed, found=found, error=None, max_records=MAX_RECORDS)


def _records(text: str) -> list[dict[str, str]]:
    """The pasted CSV as records (empty values left out); none when there is no header and record."""
    rows = [row for row in csv.reader(io.StringIO(text.strip())) if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        return []
    header = [name.strip() for name in rows[0]]
    pairs = (zip(header, row, strict=False) for row in rows[1:])  # a short line leaves its last fields out
    return [{name: value.strip() for name, value in pair if name and value.strip()} for pair in pairs]
