"""Liveness and readiness, for the service manager and the load balancer. Both public; neither says more than which
checks passed.

* ``GET /health/live`` (and ``/health``): the process answers. No I/O: a database away is not a reason to restart it.
* ``GET /health/ready``: this process can serve: the database answers, its schema is at the newest revision this code
  knows, the access policy is loaded into the process's enforcer, the data folder takes a new file. 200 with every
  check ``ok``, else 503 naming the ones ``failing`` (never why: no error text, path or version goes out; the log has
  the exception's type). The checks run side by side in worker threads not counted against the requests' own, each
  for at most ``DATASHARE_READINESS_TIMEOUT_SECONDS``; one that does not finish in time is failing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Literal

import anyio
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.deps import Platform, get_platform
from catalog import logsafe
from catalog.migrate import alembic_config

router = APIRouter(tags=["ops"])
log = logsafe.logger(__name__)
CheckState = Literal["ok", "failing"]
REUSED_SECONDS = 1.0


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckState]


@router.get("/health/live")
@router.get("/health", summary="Live (alias of /health/live)")
async def live() -> Liveness:
    return Liveness()


@router.get(
    "/health/ready", response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A check failed: it is named"}},
)  # fmt: skip
async def ready(request: Request, platform: Annotated[Platform, Depends(get_platform)]) -> JSONResponse:
    """The last answer is reused for a second: a storm of probes costs the database one round of checks a second."""
    remembered: tuple[float, Readiness] | None = getattr(request.app.state, "readiness", None)
    if remembered is None or time.monotonic() - remembered[0] >= REUSED_SECONDS:
        remembered = request.app.state.readiness = (time.monotonic(), await _readiness(platform))
    body = remembered[1]
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)


async def _readiness(platform: Platform) -> Readiness:
    checks = readiness_checks(platform)
    states: dict[str, CheckState] = {}
    limiter = anyio.CapacityLimiter(len(checks))  # never waits behind busy request threads
    timeout = platform.settings.readiness_timeout_seconds

    async def run(name: str, check: Callable[[], None]) -> None:
        states[name] = await _state(name, check, limiter, timeout)

    async with anyio.create_task_group() as group:
        for name, check in checks.items():
            group.start_soon(run, name, check)
    ordered = {name: states[name] for name in checks}
    is_ready = all(state == "ok" for state in ordered.values())
    return Readiness(status="ready" if is_ready else "not_ready", checks=ordered)


async def _state(name: str, check: Callable[[], None], limiter: anyio.CapacityLimiter, timeout: float) -> CheckState:
    try:
        with anyio.fail_after(timeout):
            await anyio.to_thread.run_sync(check, limiter=limiter, abandon_on_cancel=True)
    except TimeoutError:
        log.warning("readiness: check %s took longer than %s s", name, timeout)
        return "failing"
    except Exception as error:  # whatever it is, the answer is "failing"; what it was goes to the log only
        log.warning("readiness: check %s failed (%s)", name, type(error).__name__)
        return "failing"
    return "ok"


def readiness_checks(platform: Platform) -> dict[str, Callable[[], None]]:
    return {
        "database": lambda: _database_answers(platform),
        "schema": lambda: _schema_at_head(platform),
        "policy": lambda: _policy_loaded(platform),
        "data_dir": lambda: _data_dir_writable(platform),
    }


class CheckFailed(Exception):
    pass


def _database_answers(platform: Platform) -> None:
    with platform.engine.connect() as connection:
        connection.execute(text("SELECT 1")).one()


@lru_cache(maxsize=1)
def newest_revisions() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _schema_at_head(platform: Platform) -> None:
    with platform.engine.connect() as connection:
        current = frozenset(MigrationContext.configure(connection).get_current_heads())
    if current != newest_revisions():
        raise CheckFailed("the schema is not at the newest revision")


def _policy_loaded(platform: Platform) -> None:
    """The access cache polls the change log if it is time, as a request would (the first poll loads the policy)."""
    with Session(platform.engine) as session:
        platform.access.refresh(session)
        session.rollback()
    if platform.access.enforcer.rules_loaded() == 0:
        raise CheckFailed("no access policy is loaded")


def _data_dir_writable(platform: Platform) -> None:
    with tempfile.TemporaryFile(dir=platform.settings.resolved_data_dir, prefix=".ready-") as probe:
        probe.write(b"ready")
        probe.flush()
