"""Request dependencies: the unit of work, who is asking, and what the policy lets them do."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.problems import ApiProblem, forbidden, unauthenticated
from catalog.access.changes import ANNOUNCED
from catalog.access.service import ANONYMOUS, Principal
from catalog.audit import service as audit
from catalog.classification.masking import pseudonym_key
from catalog.delivery.access_cache import AccessCache
from catalog.errors import DomainError
from catalog.settings import Settings

MAX_ID = 2_147_483_647  # row ids are 32-bit integers; a larger number is a 422, never a database error
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class RateLimiter:
    """A token bucket per principal (per client address when anonymous), in this process."""

    def __init__(self, per_second: float, burst: int) -> None:
        self._rate, self._burst = per_second, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - last) * self._rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self._rate


@dataclass
class Platform:
    """What every request shares: set up once per API process."""

    engine: Engine
    settings: Settings
    access: AccessCache = field(init=False)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(per_second=50, burst=100))

    def __post_init__(self) -> None:
        key = pseudonym_key(self.settings.secret_key.get_secret_value())
        self.access = AccessCache(self.settings.access_refresh_seconds, key)


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def get_session(platform: Annotated[Platform, Depends(get_platform)]) -> AsyncIterator[Session]:
    """One transaction per request: committed when the endpoint returns, before the response is sent (a failed
    commit is an error response, never a success), rolled back when it raises. Only the database work goes to a
    worker thread, and only when there is some (an endpoint that committed itself needs no second hand-off)."""
    session = Session(platform.engine, expire_on_commit=False)
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()  # no transaction is left open here: this returns nothing to the pool, no database work
    if session.info.pop(ANNOUNCED, False):
        platform.access.poll_soon()


PlatformDep = Annotated[Platform, Depends(get_platform)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_principal(request: Request, session: SessionDep, platform: PlatformDep) -> Principal:
    """Who is asking: from memory when it can be (no thread hand-off, no database), else looked up."""
    credential = _bearer_credential(request)
    secret = platform.settings.secret_key.get_secret_value()
    principal = platform.access.known_principal(credential, secret)
    if principal is None:
        principal = await run_in_threadpool(_look_up_principal, session, platform, credential, secret)
    client = request.client.host if request.client else "unknown"
    wait = platform.limiter.take(principal.subject if not principal.anonymous else f"anonymous@{client}")
    if wait:
        raise ApiProblem(429, "rate_limited", "too many requests; slow down", {"Retry-After": str(int(wait) + 1)})
    return principal


def _bearer_credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise unauthenticated("send the access token or machine token as 'Authorization: Bearer <token>'")
    return credential.strip()


def _look_up_principal(session: Session, platform: Platform, credential: str | None, secret: str) -> Principal:
    platform.access.refresh(session)
    principal = ANONYMOUS if credential is None else platform.access.principal(session, credential, secret)
    # It only read: its connection goes back to the pool now. A request must never hold a connection while it
    # waits for a worker thread, or requests holding connections and threads waiting for them deadlock.
    session.commit()
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class Guard:
    """The caller and the policy: ``require`` raises 401 for the anonymous, 403 for the not allowed.

    A refusal is audited alone: whatever the request had done is rolled back, the audit event is committed,
    then the error is raised (a second connection would wait on SQLite's write lock held by this one)."""

    principal: Principal
    platform: Platform
    session: Session

    def allows(self, department: str, obj: str, action: str) -> bool:
        subject = self.principal.subject
        return not self.principal.anonymous and self.platform.access.enforcer.allows(subject, department, obj, action)

    def require(self, department: str, obj: str, action: str, item_code: str | None = None) -> None:
        if self.allows(department, obj, action):
            return
        self.refused(f"{obj}.{action}", item_code=item_code, on_behalf_of=department)
        raise unauthenticated() if self.principal.anonymous else forbidden()

    @contextmanager
    def refusals_audited(self, action: str, **detail: Any) -> Iterator[None]:
        """Any domain error inside (not found, conflict, invalid) is audited as a refusal, then raised."""
        try:
            yield
        except DomainError as refusal:
            self.refused(action, reason=refusal.code, **detail)
            raise

    def refused(self, action: str, **detail: Any) -> None:
        self.session.rollback()
        audit.record(self.session, self.principal.subject, self.principal.department, action, "denied", **detail)
        self.session.commit()

    def signed_in(self) -> Principal:
        if self.principal.anonymous:
            raise unauthenticated()
        return self.principal


async def get_guard(principal: PrincipalDep, platform: PlatformDep, session: SessionDep) -> Guard:
    return Guard(principal, platform, session)


GuardDep = Annotated[Guard, Depends(get_guard)]
