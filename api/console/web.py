"""What every console page shares: who is signed in (the session cookie, checked against the database), the same
Guard the API uses, the page's language, the CSRF token of its forms, and rendering a template in that language."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from api.console import i18n, reasons, terms
from api.deps import Guard, Platform, PlatformDep, SessionDep, client_address, counted
from catalog.access import console_sessions
from catalog.access.policy import EVERYWHERE
from catalog.access.service import ANONYMOUS, Principal

PREFIX = "/console"
SESSION_COOKIE = "datashare_session"
CSRF_COOKIE = "datashare_csrf"
CSRF_FIELD = "csrf_token"
TOKEN_LENGTH = 43  # 32 random bytes (or a SHA-256 digest) in unpadded base64
TEMPLATES = i18n.Path(__file__).parent / "templates"
# Scripts, styles and images from the application only (no CDN: the console runs on an intranet); no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@functools.cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        language=language, languages=i18n.LANGUAGES, prefix=PREFIX,
        when=functools.partial(i18n.when, language), number=functools.partial(i18n.number, language),
        reason=functools.partial(reasons.said, language), rule=functools.partial(terms.rule, language),
        data_type=functools.partial(terms.data_type, language),
        semantic_type=functools.partial(terms.semantic_type, language),
    )  # fmt: skip
    return env


@dataclass
class Page:
    """One console request: who asks, in which language, and the guard that decides what they may see and do."""

    request: Request
    session: Session
    guard: Guard
    language: str
    csrf_token: str
    new_csrf: bool

    @property
    def principal(self) -> Principal:
        return self.guard.principal

    def may_anywhere(self, obj: str, action: str) -> bool:
        """Whether the person may do this everywhere (officers, ops) or in their own department (stewards)."""
        own = self.principal.department
        return self.guard.allows(EVERYWHERE, obj, action) or (own is not None and self.guard.allows(own, obj, action))

    def t(self, message: str, **values: Any) -> str:
        return i18n.gettext(self.language, message, **values)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = (
            environment(self.language)
            .get_template(template)
            .render(page=self, principal=self.principal, csrf_token=self.csrf_token, csrf_field=CSRF_FIELD, **context)
        )
        return self.respond(HTMLResponse(html, status_code=status))

    def redirect(self, path: str) -> RedirectResponse:
        return self.respond(RedirectResponse(path, status_code=303))

    def respond(self, response: Any) -> Any:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Language"] = self.language.replace("_", "-")
        if self.new_csrf:
            set_cookie(response, self.request, CSRF_COOKIE, self.csrf_token, max_age=None)
        return response


def secure_cookies(request: Request) -> bool:
    return bool(request.app.state.platform.settings.mode == "production")


def cookie_name(request: Request, name: str) -> str:
    """In production the console's cookies are ``__Host-`` cookies: Secure, for this host only, so no other site of
    the same domain (nor a plain-HTTP man in the middle) can set one of them."""
    return f"__Host-{name}" if secure_cookies(request) else name


def cookie(request: Request, name: str) -> str | None:
    return request.cookies.get(cookie_name(request, name))


def set_cookie(response: Any, request: Request, name: str, value: str, max_age: int | None) -> None:
    secure = secure_cookies(request)
    response.set_cookie(cookie_name(request, name), value, max_age=max_age, path="/" if secure else PREFIX,
                        httponly=True, samesite="lax", secure=secure)  # fmt: skip


def delete_cookie(response: Any, request: Request, name: str) -> None:
    response.delete_cookie(cookie_name(request, name), path="/" if secure_cookies(request) else PREFIX)


def csrf_token_of(request: Request, session_secret: str) -> str:
    """A signed-in person's form token: bound to their session (it changes with each sign-in) and unforgeable
    without the platform's secret key, whatever cookie a page of another site manages to set."""
    key = request.app.state.platform.settings.secret_key.get_secret_value().encode()
    digest = hmac.new(key, b"console-csrf:" + session_secret.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def expected_csrf(request: Request) -> str | None:
    """The token a form must carry: the session's when there is a session cookie, else the random one of the
    browser's cookie (before signing in)."""
    session_secret = cookie(request, SESSION_COOKIE)
    return csrf_token_of(request, session_secret) if session_secret else cookie(request, CSRF_COOKIE)


def idle(request: Request) -> timedelta:
    return timedelta(minutes=request.app.state.platform.settings.console_idle_minutes)


async def console_page(request: Request, session: SessionDep, platform: PlatformDep) -> Page:
    principal = await run_in_threadpool(_signed_in, session, platform, cookie(request, SESSION_COOKIE), idle(request))
    await _counted_request(platform, request, principal)
    held = cookie(request, CSRF_COOKIE)
    token = expected_csrf(request)
    if not token or len(token) != TOKEN_LENGTH:
        token = secrets.token_urlsafe(32)
    return Page(request, session, Guard(principal, platform, session), i18n.language_of(request), token, held != token)


async def _counted_request(platform: Platform, request: Request, principal: Principal) -> None:
    """The API's request limits (api/limits.py): the anonymous per address, the signed-in per person."""
    if principal.anonymous:
        await counted(platform, platform.limits.anonymous_request, client_address(request))
    else:
        platform.limits.principal_request(principal.subject)


def _signed_in(session: Session, platform: Platform, secret: str | None, idle: timedelta) -> Principal:
    """Who the session cookie belongs to, with the policy as fresh as the API keeps it (api/deps.py)."""
    platform.access.refresh(session)
    return (console_sessions.principal_of(session, secret, idle) if secret else None) or ANONYMOUS


PageDep = Annotated[Page, Depends(console_page)]


class ForgedForm(Exception):
    """A form post without the token of the page it came from: refused (403) before anything is done."""


class Form:
    """A posted form's text values (files are not taken)."""

    def __init__(self, values: list[tuple[str, str]]) -> None:
        self._values = values

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self._values if key == name), default)

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self._values if key == name]

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in reversed(self._values)}


async def checked_form(request: Request, page: PageDep) -> Form:
    """The posted form, once its CSRF token matches the cookie's (a page of another site cannot read the cookie,
    so it cannot send the token) and, when the browser says where the post comes from, the origin is this site."""
    posted = await request.form()
    sent = posted.get(CSRF_FIELD)
    expected = expected_csrf(request)
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise ForgedForm
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise ForgedForm
    return Form([(key, value) for key, value in posted.multi_items() if isinstance(value, str)])


FormDep = Annotated[Form, Depends(checked_form)]
