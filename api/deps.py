"""Request dependencies: the unit of work, who is asking, and what the policy lets them do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.limits import Limits, client_key
from api.problems import forbidden, unauthenticated
from catalog import logsafe
from catalog.access.changes import ANNOUNCED
from catalog.access.service import ANONYMOUS, InvalidCredentials, Principal
from catalog.audit import service as audit
from catalog.classification.masking import pseudonym_key
from catalog.delivery.access_cache import AccessCache
from catalog.errors import DomainError
from catalog.settings import Settings

MAX_ID = 2_147_483_647  # row ids are 32-bit integers; a larger number is a 422, never a database error
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
log = logsafe.logger(__name__)


@dataclass
class Platform:
    """What every request shares: set up once per API process."""

    engine: Engine
    settings: Settings
    access: AccessCache = field(init=False)
    limits: Limits = field(init=False)

    def __post_init__(self) -> None:
        key = pseudonym_key(self.settings.secret_key.get_secret_value())
        self.access = AccessCache(self.settings.access_refresh_seconds, key)
        self.limits = Limits(self.settings.rate_limit_storage)
        if self.limits.in_process and self.settings.mode == "production":
            log.warning("DATASHARE_RATE_LIMIT_STORAGE is memory://: with several API processes, each counts alone")


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


async def get_principal(
    request: Request, session: SessionDep, platform: PlatformDep, credential: CredentialDep
) -> Principal:
    """Who is asking: from memory when it can be (no thread hand-off, no database), else looked up. Each bad
    credential counts against the client's address, and a credential to look up is refused (429) before the
    database is asked once the address sent too many; the anonymous are limited per address, the signed-in per
    principal (api/limits.py)."""
    secret = platform.settings.secret_key.get_secret_value()
    client = client_address(request)
    try:
        principal = platform.access.known_principal(credential, secret)
    except InvalidCredentials:  # a bad signature or an expired token: nothing was looked up
        await counted(platform, platform.limits.credential_failed, client)
        raise
    if principal is None:
        principal = await run_in_threadpool(_look_up_principal, session, platform, credential, secret, client)
    if principal.anonymous:
        await counted(platform, platform.limits.anonymous_request, client)
    else:
        platform.limits.principal_request(principal.subject)
    return principal


def client_address(request: Request) -> str:
    """What the caller is counted by: the connection's address (the proxy's X-Forwarded-For, with
    ``--proxy-headers``), an IPv6 one by its /64."""
    return client_key(request.client.host if request.client else None)


async def counted(platform: Platform, count: Callable[[str], None], client: str) -> None:
    """Count in the shared store: directly when it is in this process, else in a worker thread (a Redis round
    trip must not hold the event loop)."""
    if platform.limits.in_process:
        count(client)
    else:
        await run_in_threadpool(count, client)


BEARER = HTTPBearer(
    scheme_name="bearer", auto_error=False,
    description="An access token from POST /auth/login, or a department's machine token (dst_…).",
)  # fmt: skip


async def _bearer_credential(
    request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> str | None:
    """The caller's token, None for the anonymous. Through ``BEARER``, every operation that identifies its caller
    declares the scheme in the OpenAPI document; an Authorization header of another form is a 401, not anonymous.
    Async: a plain function would cost every request a hand-off to a worker thread."""
    if bearer is not None:
        return bearer.credentials
    if request.headers.get("authorization") is not None:
        raise unauthenticated("send the access token or machine token as 'Authorization: Bearer <token>'")
    return None


CredentialDep = Annotated[str | None, Depends(_bearer_credential)]


def _look_up_principal(
    session: Session, platform: Platform, credential: str | None, secret: str, client: str
) -> Principal:
    # It only reads: its connection goes back to the pool before it returns, refused or not. A request must never
    # hold a connection while it waits for a worker thread, or requests holding connections and threads waiting for
    # them deadlock.
    try:
        platform.access.refresh(session)
        principal = ANONYMOUS if credential is None else _holder(session, platform, credential, secret, client)
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return principal


def _holder(session: Session, platform: Platform, credential: str, secret: str, client: str) -> Principal:
    limits = platform.limits
    try:
        return platform.access.principal(session, credential, secret, partial(limits.before_credential_look_up, client))
    except InvalidCredentials:
        limits.credential_failed(client)
        raise


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
