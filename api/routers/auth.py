"""Signing in, and machine tokens for a department's systems (the service audits a token's creation and revocation
as the caller, in the request's transaction). A sign-in counts as an anonymous request of its client; failed ones
lock the user name and the client address out for a while (api/limits.py), checked before any password is."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import GuardDep, Id, Platform, PlatformDep, SessionDep, client_address
from api.problems import ApiProblem
from catalog.access import service
from catalog.access.models import MachineToken
from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.classification.review import NO_NUL
from catalog.departments.models import Department

router = APIRouter(tags=["auth"])
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters: a NUL would be a database error on PostgreSQL


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    password: str = Field(min_length=1, max_length=200, pattern=NO_NUL)


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    department: str | None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    days: int = Field(default=90, ge=1, le=service.MAX_TOKEN_DAYS)


class TokenRead(BaseModel):
    id: int
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="The secret: shown this once, never stored.")


@router.post("/auth/login", response_model=AccessToken)
def login(body: LoginRequest, request: Request, session: SessionDep, platform: PlatformDep) -> AccessToken:
    principal = sign_in(session, platform, request, body.username, body.password)
    token, lifetime = service.issue_access_token(principal, platform.settings.secret_key.get_secret_value())
    return AccessToken(access_token=token, expires_in=lifetime, department=principal.department)


def sign_in(
    session: Session, platform: Platform, request: Request, username: str, password: str, **detail: str
) -> Principal:
    """The person, once their password is right and neither their name nor their address is locked out; every
    attempt audited (the API's and the console's sign-ins alike)."""
    client, limits = client_address(request), platform.limits
    limits.anonymous_request(client)
    wait = limits.login_lockout(username, client)
    if wait:
        _refused(session, username, reason="throttled", **detail)
        raise _throttled(wait)
    try:
        principal = service.authenticate(session, username, password)
    except service.InvalidCredentials:
        limits.login_failed(username, client)
        _refused(session, username, **detail)
        raise
    limits.login_succeeded(username)
    audit.record(session, principal.subject, principal.department, "login", "done", **detail)
    return principal


def _throttled(wait: int) -> ApiProblem:
    detail = "too many failed sign-ins as this user or from this address; the right password is refused too"
    return ApiProblem(429, "login_throttled", f"{detail}; try again in {wait} s", {"Retry-After": str(wait)})


def _refused(session: Session, username: str, **detail: str) -> None:
    audit.record(session, f"user:{username}", None, "login", "denied", **detail)
    session.commit()  # the refusal stays on record; the error then rolls back nothing else


@router.post("/departments/{department}/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(department: str, body: TokenCreate, session: SessionDep, guard: GuardDep) -> TokenCreated:
    guard.require(department, "token", "manage")
    token, secret = service.create_machine_token(session, department, body.name, body.days, guard.principal)
    return TokenCreated(token=secret, **_read(token).model_dump())


@router.get("/departments/{department}/tokens", response_model=list[TokenRead])
def list_tokens(department: str, session: SessionDep, guard: GuardDep) -> list[TokenRead]:
    guard.require(department, "token", "manage")
    tokens = session.scalars(
        select(MachineToken)
        .join(Department, MachineToken.department_id == Department.id)
        .where(Department.code == department)
        .order_by(MachineToken.id)
    )
    return [_read(token) for token in tokens]


@router.delete("/departments/{department}/tokens/{token_id}", response_model=TokenRead)
def revoke_token(department: str, token_id: Id, session: SessionDep, guard: GuardDep) -> TokenRead:
    guard.require(department, "token", "manage")
    token = service.revoke_machine_token(session, token_id, department, guard.principal)
    return _read(token)


def _read(token: MachineToken) -> TokenRead:
    return TokenRead(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        created_by=token.created_by,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )
