"""The interactive docs, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, with their scripts, styles and icon
served by the application itself, so they work with no internet (FastAPI's defaults load them from a CDN). The
files ship in the ``fastapi-offline`` package; ``DATASHARE_API_DOCS`` turns the pages off (the OpenAPI document
stays: clients are generated from it)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
# Swagger UI would otherwise show a badge fetched from swagger.io's online validator.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True}


def install(app: FastAPI) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI", oauth2_redirect_url=None,
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png", swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )  # fmt: skip

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png", with_google_fonts=False,
        )  # fmt: skip


def _root(request: Request) -> str:
    """The prefix a reverse proxy serves the API under (uvicorn's --root-path), if any."""
    return str(request.scope.get("root_path", "")).rstrip("/")
