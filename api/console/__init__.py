"""The web console: server-rendered pages for department staff, stewards, data officers and ops, served by the API's
application under /console, in Simplified Chinese and English. Its pages call the same catalog services and the same
Casbin guard as the API; its assets are served by the application itself (no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import (
    account,
    catalog,
    deliveries,
    governance,
    ops,
    review,
    subscriptions,
    utilisation,
    verification,
)
from api.console.web import PREFIX

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    router.include_router(account.router)
    router.include_router(catalog.router)
    router.include_router(deliveries.router)  # before subscriptions': its /subscriptions/{id}/{action} takes any
    router.include_router(subscriptions.router)
    router.include_router(verification.router)
    router.include_router(review.router)
    router.include_router(ops.router)
    router.include_router(governance.router)
    router.include_router(utilisation.router)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
