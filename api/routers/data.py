"""Data of an item's current (or a pinned) version: keyset-paginated JSON pages, equality filters and key
look-ups, and CSV, JSON-lines and Parquet downloads streamed in constant memory. Only approved fields are
returned; fields above the subscription's approved level are masked in every format. Every read, and every
refusal, is audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from pydantic_core import to_json
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api import metrics
from api.deps import (
    MAX_ID,
    CredentialDep,
    Guard,
    GuardDep,
    Platform,
    PlatformDep,
    SessionDep,
    get_principal,
    get_session,
)
from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.db import READ_ONLY
from catalog.delivery import lookups, verification
from catalog.delivery import service as delivery
from catalog.errors import DomainError

router = APIRouter(prefix="/items/{code}", tags=["data"])
Filters = Annotated[
    list[str], Query(alias="filter", description="name:value, equality on a field shown unmasked; repeatable")
]
Version = Annotated[int | None, Query(ge=1, le=MAX_ID, description="A pinned version; the current one by default")]
unit_of_work = asynccontextmanager(get_session)


class DataPage(BaseModel):
    item: str
    version: int
    fields: list[str]
    masked_fields: list[str]
    rows: list[dict[str, Any]]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


@router.get("/data", response_model=DataPage)
async def page(
    code: str,
    session: SessionDep,
    guard: GuardDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=delivery.MAX_PAGE)] = 100,
    version: Version = None,
    filters: Filters = [],  # noqa: B006  (FastAPI copies defaults)
) -> Response:
    """One hand-off to a worker thread for the whole read, its audit row and the commit; the page goes out as
    JSON without a second validation of what the code above built."""
    body, grant = await run_in_threadpool(read_page, code, session, guard, after, limit, version, filters)
    return Response(body, media_type="application/json", headers=_headers(grant))


def read_page(code: str, session: SessionDep, guard: GuardDep, after: int, limit: int, version: int | None,
               filters: list[str]) -> tuple[bytes, delivery.Grant]:  # fmt: skip
    with guard.refusals_audited("data.read", item_code=code):
        grant = _grant(code, version, session, guard)
        parsed = _filters(filters)
        if session.in_transaction():
            session.commit()  # the read has a connection of its own; one request never holds two
        event = _read_event(guard, grant, parsed, "json", after=after)
        page = delivery.read_page(guard.platform.engine, grant, parsed, after, limit, event)  # audited, committed
    metrics.count_rows_served("json", guard.principal.department, page.count)
    head = {"item": code, "version": grant.version, "fields": grant.names, "masked_fields": grant.masked}
    body = to_json(head)[:-1] + b',"rows":' + page.rows + b',"next_after":' + to_json(page.next_after) + b"}"
    return body, grant


class VerifyRequest(BaseModel):
    records: list[dict[str, str | int | float | bool | None]] = Field(
        min_length=1,
        max_length=verification.MAX_RECORDS,
        description="Records the caller holds: each with every key field of the item, and any granted field to "
        "compare as well (a name with a resident ID).",
    )


class VerifyResult(BaseModel):
    match: bool = Field(description="Whether the current version holds a row with the record's key and values.")
    fields: dict[str, Any] | None = Field(description="For a match, the granted fields, masked as reads are.")


class VerifyPage(BaseModel):
    item: str
    version: int
    key: list[str] = Field(description="The fields a record is matched by.")
    fields: list[str] = Field(description="What a match returns.")
    masked_fields: list[str]
    results: list[VerifyResult] = Field(description="One per record, in the order sent.")


async def _caller(request: Request, credential: CredentialDep) -> Principal:
    """``get_principal`` with its own unit of work: who is asking, counted by the abuse limits, before the body is
    validated, as for any route. Fewer dependencies for FastAPI to solve than the platform, the session and the
    guard as dependencies of their own (measured: 0.03 ms of CPU a call)."""
    platform: Platform = request.app.state.platform
    async with unit_of_work(platform) as session:
        return await get_principal(request, session, platform, credential)


CallerDep = Annotated[Principal, Depends(_caller)]


@router.post("/verify", response_model=VerifyPage)
async def verify(code: str, body: VerifyRequest, request: Request, principal: CallerDep) -> Response:
    """Verification look-ups (数据核验): for each record the caller holds, match or no match against the current
    version by the item's key (which works whatever the caller's level), and for a match only the fields its
    subscription grants, masked as its reads are; never any other column. A verification subscription allows this
    and no reading of the data; a read subscription allows both. Up to 1,000 records a call; audited with counts.
    A single record on PostgreSQL whose checks pass from memory is looked up on the event loop (one statement on a
    connection of the process's own, its audit row with it); anything else, a refusal too, in one hand-off to a
    worker thread for the checks, the look-ups, their audit row and its commit."""
    platform: Platform = request.app.state.platform
    connections: lookups.LookUpConnections | None = request.app.state.look_ups
    async with unit_of_work(platform) as session:
        guard = Guard(principal, platform, session)
        look_up = None if connections is None else _checked_in_memory(code, body, session, guard)
        if connections is None or look_up is None:
            found = await run_in_threadpool(verified, code, body, session, guard, True)
        else:
            found = await connections.verify_one(look_up)
            metrics.count_rows_served("verify", principal.department, found.matched)
    page = {
        "item": code,
        "version": found.version,
        "key": found.key,
        "fields": found.fields,
        "masked_fields": found.masked_fields,
        "results": found.results,
    }  # VerifyPage's shape, built here
    return Response(to_json(page), media_type="application/json")


def _checked_in_memory(code: str, body: VerifyRequest, session: Session, guard: Guard) -> lookups.LookUp | None:
    """A single record's look-up, checked as ``verified`` checks it, from what the process remembers alone (the
    policy's decision, the item, its subscription); None when a check needs the database or refuses: ``verified``
    then decides, and audits a refusal, as for any other call. The checks read one snapshot of the item as the process
    remembered it, never the database: nothing blocks the event loop."""
    principal = guard.principal
    if principal.anonymous or len(body.records) != 1 or not guard.allows(str(principal.department), "data", "read"):
        return None
    cache = guard.platform.access.remembered(code)  # one snapshot of the item: no database read on the loop
    if cache is None or cache.snapshot.current is None:
        return None
    try:
        grant = delivery.grant_for(session, cache, principal, code, verifying=True)
        return lookups.checked(session, cache, principal, grant, body.records[0])
    except DomainError:
        return None


def verified(code: str, body: VerifyRequest, session: SessionDep, guard: GuardDep,
             own_connection: bool = False) -> verification.Verified:  # fmt: skip
    """The look-ups with the API's checks and audit (the console's page calls this too). ``own_connection``: a
    single record on PostgreSQL is looked up, and audited, by one statement on a connection of its own
    (catalog/delivery/lookups.py), committed with it."""
    engine = guard.platform.engine
    with guard.refusals_audited("data.verify", item_code=code):
        principal = guard.principal
        if not principal.anonymous:
            guard.require(str(principal.department), "data", "read", item_code=code)
        grant = delivery.grant_for(session, guard.platform.access, principal, code, verifying=True)
        single = own_connection and lookups.applies(engine, body.records)
        if single:
            found = lookups.verify_one(engine, session, guard.platform.access, principal, grant, body.records[0])
        else:
            found = verification.verify(session.connection(), session, guard.platform.access, grant, body.records)
    if not single:  # the single look-up's event was inserted, and committed, with it
        audit.write(session.connection(), verification.audit_event(principal, grant, found))
    metrics.count_rows_served("verify", principal.department, found.matched)
    return found


@router.get("/data.csv", response_class=StreamingResponse)
def download_csv(code: str, session: SessionDep, guard: GuardDep, platform: PlatformDep,
                 version: Version = None, filters: Filters = []) -> StreamingResponse:  # noqa: B006  # fmt: skip
    return _download(code, version, filters, "csv", "text/csv; charset=utf-8", session, guard, platform,
                     delivery.csv_download)  # fmt: skip


@router.get("/data.jsonl", response_class=StreamingResponse)
def download_jsonl(code: str, session: SessionDep, guard: GuardDep, platform: PlatformDep,
                   version: Version = None, filters: Filters = []) -> StreamingResponse:  # noqa: B006  # fmt: skip
    return _download(code, version, filters, "jsonl", "application/x-ndjson", session, guard, platform,
                     lambda connection, grant, filters: delivery.jsonl_chunks(
                         delivery.stream_batches(connection, grant, filters)))  # fmt: skip


@router.get("/data.parquet", response_class=StreamingResponse)
def download_parquet(code: str, session: SessionDep, guard: GuardDep, platform: PlatformDep,
                     version: Version = None, filters: Filters = []) -> StreamingResponse:  # noqa: B006  # fmt: skip
    return _download(code, version, filters, "parquet", "application/vnd.apache.parquet", session, guard, platform,
                     lambda connection, grant, filters: delivery.parquet_chunks(
                         grant, delivery.stream_batches(connection, grant, filters)))  # fmt: skip


def _download(
    code: str,
    version: int | None,
    filters: list[str],
    kind: str,
    media_type: str,
    session: SessionDep,
    guard: GuardDep,
    platform: PlatformDep,
    encode: Callable[[Connection, delivery.Grant, dict[str, str]], Iterator[bytes]],
) -> StreamingResponse:
    with guard.refusals_audited("data.read", item_code=code):
        grant = _grant(code, version, session, guard)
        parsed = _filters(filters)
        rows = delivery.count_rows(session.connection(), grant, parsed)
    _audit_read(session, guard, grant, rows, parsed, kind)  # committed before the first byte is sent

    def body() -> Iterator[bytes]:
        with platform.engine.connect() as connection:  # its own read-only transaction, for as long as it streams
            connection = connection.execution_options(**{READ_ONLY: True})
            yield from encode(connection, grant, parsed)
        metrics.count_rows_served(kind, guard.principal.department, rows)  # once the whole download is handed on

    headers = _headers(grant) | {"Content-Disposition": f'attachment; filename="{code}-v{grant.version}.{kind}"'}
    return StreamingResponse(body(), media_type=media_type, headers=headers)


def _grant(code: str, version: int | None, session: SessionDep, guard: GuardDep) -> delivery.Grant:
    principal = guard.principal
    if not principal.anonymous:
        guard.require(str(principal.department), "data", "read", item_code=code)
    return delivery.grant_for(session, guard.platform.access, principal, code, version)


def _filters(filters: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for text in filters:
        name, separator, value = text.partition(":")
        if not separator or not name:
            raise delivery.InvalidFilter("a filter is written name:value")
        parsed[name] = value
    return parsed


def _audit_read(
    session: SessionDep, guard: GuardDep, grant: delivery.Grant, rows: int, filters: dict[str, str], kind: str
) -> None:
    audit.write(session.connection(), _read_event(guard, grant, filters, kind) | {"rows": rows})


def _read_event(guard: GuardDep, grant: delivery.Grant, filters: dict[str, str], kind: str, **detail: Any
                ) -> dict[str, Any]:  # fmt: skip
    principal = guard.principal
    return audit.event(principal.subject, principal.department, "data.read", "allowed", item_code=grant.item,
                       version=grant.version, subscription_id=grant.subscription_id, fields_returned=grant.names,
                       fields_masked=grant.masked, filters=filters, format=kind, **detail)  # fmt: skip


def _headers(grant: delivery.Grant) -> dict[str, str]:
    """Which version and which fields were masked (names percent-encoded: headers carry ASCII only)."""
    return {
        "X-Datashare-Version": str(grant.version),
        "X-Datashare-Masked-Fields": ",".join(quote(name) for name in grant.masked),
    }
