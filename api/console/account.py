"""Signing in and out of the console, and choosing its language."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api.console import i18n
from api.console.web import (
    CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    FormDep,
    Page,
    PageDep,
    cookie,
    csrf_token_of,
    delete_cookie,
    idle,
    set_cookie,
)
from api.problems import ApiProblem
from api.routers.auth import LoginRequest, sign_in
from catalog.access import console_sessions
from catalog.access.service import InvalidCredentials
from catalog.audit import service as audit

router = APIRouter()
YEAR = 366 * 24 * 3600


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(page: PageDep, next: str = "") -> HTMLResponse:
    return page.render("sign_in.html", next=_local(next), username="", error=None)


@router.post("/sign-in", response_model=None)
def sign_in_submitted(request: Request, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    username, password = form.get("username").strip(), form.get("password")
    target = _local(form.get("next"))
    try:  # the API's own checks of a sign-in's input (length, no control characters)
        LoginRequest(username=username, password=password)
    except ValidationError:
        return page.render("sign_in.html", 422, next=target, username=username[:64],
                           error=page.t("Enter your user name and password."))  # fmt: skip
    platform = request.app.state.platform
    try:
        principal = sign_in(page.session, platform, request, username, password, channel="console")
    except InvalidCredentials:
        page.session.commit()
        return page.render("sign_in.html", 401, next=target, username=username,
                           error=page.t("The user name or password is not right."))  # fmt: skip
    except ApiProblem as refusal:
        page.session.commit()
        wait = (refusal.headers or {}).get("Retry-After", "60")
        error = page.t("Too many failed sign-ins. Try again in %(seconds)s seconds.", seconds=wait)
        return page.render("sign_in.html", 429, next=target, username=username, error=error)
    earlier = cookie(request, SESSION_COOKIE)
    if earlier:  # whoever signed in before in this browser is signed out
        console_sessions.end(page.session, earlier)
    secret = console_sessions.begin(page.session, principal, idle(request))
    response = page.redirect(target or f"{PREFIX}/")
    set_cookie(response, request, SESSION_COOKIE, secret, max_age=None)
    set_cookie(response, request, CSRF_COOKIE, csrf_token_of(request, secret), max_age=None)  # a new token
    return response


@router.post("/sign-out")
async def sign_out(request: Request, page: PageDep, form: FormDep) -> RedirectResponse:
    secret = cookie(request, SESSION_COOKIE)
    if secret:
        await run_in_threadpool(_signed_out, page, secret)
    response = page.redirect(f"{PREFIX}/sign-in")
    delete_cookie(response, request, SESSION_COOKIE)
    set_cookie(response, request, CSRF_COOKIE, secrets.token_urlsafe(32), max_age=None)
    return response


def _signed_out(page: Page, secret: str) -> None:
    console_sessions.end(page.session, secret)
    if not page.principal.anonymous:
        audit.record(page.session, page.principal.subject, page.principal.department, "logout", "done",
                     channel="console")  # fmt: skip


@router.post("/language")
def choose_language(request: Request, page: PageDep, form: FormDep) -> RedirectResponse:
    language = form.get("language", "")
    response = page.redirect(_local(form.get("next", "")) or f"{PREFIX}/")
    if language in i18n.LANGUAGES:
        set_cookie(response, request, i18n.LANGUAGE_COOKIE, language, max_age=YEAR)
    return response


def _local(target: str) -> str:
    """Only a path of the console itself is followed after signing in (never another site: no open redirect)."""
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""
