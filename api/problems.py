"""RFC 9457 problem details: every error the API returns, with a stable code.

Domain errors carry a code, not a status; this module is the one place that maps them to HTTP.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import headers, metrics
from catalog import logsafe
from catalog.access.service import InvalidCredentials
from catalog.errors import Conflict, DomainError, Forbidden, InvalidTransition, NotFound

PROBLEM_JSON = "application/problem+json"
log = logsafe.logger(__name__)


class ApiProblem(Exception):
    """An error of the API edge itself: not signed in, forbidden, too large, too many requests."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def unauthenticated(detail: str = "sign in, or send a machine token, to do this") -> ApiProblem:
    return ApiProblem(401, "unauthenticated", detail, {"WWW-Authenticate": "Bearer"})


def forbidden(detail: str = "your roles do not allow this") -> ApiProblem:
    return ApiProblem(403, "forbidden", detail)


def problem(status: int, code: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    metrics.count_refusal(status, code)  # every refusal's response is made here, once
    body = {"type": f"/problems/{code}", "title": TITLES.get(status, "Error"), "status": status, "detail": detail,
            "code": code, "instance": instance, **extra}  # fmt: skip
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Request too large",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def status_of(error: DomainError) -> int:
    if isinstance(error, InvalidCredentials):
        return 401
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Conflict | InvalidTransition):
        return 409
    return 422


def install(app: FastAPI) -> None:
    from api.console.errors import error_page, is_console
    from api.console.web import ForgedForm

    @app.exception_handler(ForgedForm)
    async def _forged(request: Request, error: ForgedForm) -> Response:
        return error_page(request, 403, forged=True)

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, error: ApiProblem) -> Response:
        if is_console(request):
            return error_page(request, error.status, error.headers)
        response = problem(error.status, error.code, error.detail, request.url.path)
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, error: DomainError) -> Response:
        status = status_of(error)
        if is_console(request):
            return error_page(request, status)
        response = problem(status, error.code, error.message, request.url.path)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        if is_console(request):
            return error_page(request, 404)  # a console address with a part out of range is no page
        # Only where and what: the offending input is never echoed (it may be a password or a resident ID).
        errors = [{"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
                  for item in error.errors()]  # fmt: skip
        return problem(422, "invalid_request", "the request does not match the schema", request.url.path,
                       errors=errors)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if is_console(request):
            return error_page(request, error.status_code, error.headers)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        response = problem(error.status_code, code, str(error.detail), request.url.path)
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(DataError)
    async def _nul_in_body(request: Request, error: DataError) -> Response:
        # A NUL character in a body field without NO_NUL: PostgreSQL's driver refuses it before sending the
        # statement. The request's fault, refused as invalid input; any other data error is the server's (a 500).
        if "NUL (0x00)" not in str(error.orig):
            raise error
        log.warning("refused a NUL character in the request to %s", logsafe.redacted(request.url.path))
        if is_console(request):
            return error_page(request, 400)
        return problem(422, "invalid_request", "a value in the request holds a NUL character", request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        # Answered outside the middleware (Starlette's outermost error handler), so it adds their headers itself.
        if is_console(request):
            page = error_page(request, 500)
            page.headers.update(headers.as_dict())
            return page
        response = problem(500, "internal_error", "the request failed; it has been logged", request.url.path)
        response.headers.update(headers.as_dict())
        return response
