"""A single verification look-up on PostgreSQL in one statement, as a page is read (``service.read_page``): the row
found by the key (the version's key index) within the grant's scope, compared on the other fields the record gives,
its granted fields masked and written as JSON by PostgreSQL, and the call's audit event inserted by the same
statement (its match counted in SQL), on an autocommit connection of its own: one round trip, committed together.

The checks are ``verification``'s own (the key, the fields a record may give, their types); the answer is the one
``verification.verify`` gives, field for field (tests/api/test_verification_single.py holds the two to it). Each
statement is compiled once per grant and set of compared columns: the masking rules' expressions take longer to
build than to run.

The API runs a look-up whose checks it can make from memory on its event loop (``checked``, then
``LookUpConnections.verify_one``: no worker thread, no ping of the connection); anything else, in a worker thread
(``verify_one``), as the console and the command line do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from select import POLLIN, poll
from typing import Any

import psycopg
import pydantic_core
from psycopg.pq import TransactionStatus
from sqlalchemy import (
    JSON,
    BindParameter,
    Engine,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import replacement_traverse
from sqlalchemy.types import TypeEngine

from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.audit.models import AuditEvent
from catalog.classification.types import DataType
from catalog.db import utcnow
from catalog.delivery import verification
from catalog.delivery.access_cache import ItemSource
from catalog.delivery.service import (
    _NUMBERED,
    ROW_COLUMN,
    Grant,
    _json_cell_sql,
    _json_object,
    _PreparedStatement,
    _version_table,
    scoped,
)

_TABLE = AuditEvent.__table__
_BOUND = ("principal", "department", "action", "outcome", "item_code", "version", "subscription_id")
_AS_JSON = ("fields_returned", "fields_masked")
_PER_CALL = ("principal", "department")  # and ``at``; the rest of the event is the grant's
_NO_ONE = Principal("", None)
CONNECTIONS = 3  # per API process: a look-up holds one for its round trip, under a millisecond (measured: 3 or 6 alike)
_ONE_RECORD = verification.Verified(0, [], [], [], [{"match": False, "fields": None}])


def applies(engine: Engine, records: list[Any]) -> bool:
    """Whether a call takes this path: one record, on PostgreSQL."""
    return len(records) == 1 and engine.dialect.name == "postgresql"


@dataclass(frozen=True)
class LookUp:
    """A record checked and bound: the statement to run, its values, and the answer's head."""

    prepared: _PreparedStatement
    values: dict[str, Any]
    version: int
    key: list[str]
    fields: list[str]
    masked_fields: list[str]

    def answer(self, shown: str | None) -> verification.Verified:
        fields = None if shown is None else pydantic_core.from_json(shown)
        result = {"match": fields is not None, "fields": fields}
        return verification.Verified(self.version, self.key, self.fields, self.masked_fields, [result])


def checked(
    session: Session, cache: ItemSource, principal: Principal, grant: Grant, record: Mapping[str, Any]
) -> LookUp:
    """``verification``'s checks of one record (a refusal raised as there), its values bound to its statement."""
    key = verification._key_fields(session, cache, grant)
    typed = verification._typed_record(1, record, key, grant)
    compared = tuple(sorted(typed.compared))
    prepared, processors = _prepared_look_up(grant, tuple(field.column for field in key), compared)
    values = [*typed.key, *(typed.compared[column] for column in compared)]
    bound = {f"value_{n}": process(value) for n, (process, value) in enumerate(zip(processors, values, strict=True))}
    bound |= {"audit_principal": principal.subject, "audit_department": principal.department, "audit_at": utcnow()}
    return LookUp(prepared, bound, grant.version, [field.name for field in key], grant.names, grant.masked)


def verify_one(
    engine: Engine,
    session: Session,
    cache: ItemSource,
    principal: Principal,
    grant: Grant,
    record: Mapping[str, Any],
) -> verification.Verified:
    """One record matched as ``verification.verify`` matches it, with ``verification.audit_event``'s event (its
    ``matched`` counted by the statement) inserted and committed with the look-up. The session's work so far (the
    checks' reads, if any) is committed first."""
    look_up = checked(session, cache, principal, grant, record)
    if session.in_transaction():
        session.commit()  # what the checks read: the look-up has a connection of its own, never a second one
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        (shown,) = look_up.prepared.run(connection, look_up.values)
    return look_up.answer(shown)


class LookUpConnections:
    """A few autocommit connections of an API process's own, used on its event loop: a look-up checked from memory
    runs there, with no hand-off to a worker thread. No round trip checks a connection before use: one that has
    something to read while idle has been ended (PostgreSQL says so, or closes it, when it restarts or ends a
    session) and is replaced, with no statement sent on it; one left in any state but idle (a cancelled call) is
    closed, never reused. Connected when first needed (in the API's worker process), closed with the application."""

    def __init__(self, engine: Engine, size: int = CONNECTIONS) -> None:
        arguments, options = engine.dialect.create_connect_args(engine.url)  # the engine's, its adapters too
        self._connect = partial(psycopg.AsyncConnection.connect, *arguments, autocommit=True, **options)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def verify_one(self, look_up: LookUp) -> verification.Verified:
        """``verify_one``'s answer and audit, on the event loop."""
        values = {**look_up.prepared.constants, **look_up.values}
        parameters = [values[name] for name in look_up.prepared.names]
        async with self._slots:
            connection = await self._connection()
            try:
                async with psycopg.AsyncRawCursor(connection) as cursor:
                    await cursor.execute(look_up.prepared.sql, parameters)
                    row = await cursor.fetchone()
            finally:
                await self._put_back(connection)
        assert row is not None
        return look_up.answer(row[0])

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            connection = self._idle.pop()
            if _still_open(connection):
                return connection
            await connection.close()
        return await self._connect()

    async def _put_back(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if self._closed or connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
            await connection.close()
        else:
            self._idle.append(connection)

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            await self._idle.pop().close()


def _still_open(connection: psycopg.AsyncConnection[Any]) -> bool:
    """An idle connection with nothing to read (one poll of its socket, no round trip): PostgreSQL has not ended it.
    Anything else (its farewell, the socket closed, a notice) and it is not trusted with a look-up."""
    if connection.closed:
        return False
    readable = poll()
    readable.register(connection.fileno(), POLLIN)
    return not readable.poll(0)


def _unchanged(value: Any) -> Any:
    return value


def _bound(name: str, type_: TypeEngine[Any]) -> BindParameter[Any]:
    """A value given at each call (``value=None``: not required when the constants are rendered)."""
    return bindparam(name, None, type_=type_)


def _written_out(element: Any, **kw: Any) -> Any:
    """The masking rules' and the JSON's constants (texts and integers) rendered into the SQL rather than bound:
    a statement with a dozen parameters instead of ninety, cheaper to send and to bind at every call."""
    if (
        isinstance(element, BindParameter)
        and not element.key.startswith(("value_", "audit_"))  # given at each call
        and (
            # A text with a backslash stays bound: written out, it would depend on standard_conforming_strings.
            (isinstance(element.value, str) and isinstance(element.type, String) and "\\" not in element.value)
            or (type(element.value) is int and isinstance(element.type, Integer))
        )
    ):
        constant = element._clone()
        constant.literal_execute = True
        return constant
    return None


@lru_cache(maxsize=4096)
def _prepared_look_up(
    grant: Grant, key_columns: tuple[str, ...], compared: tuple[str, ...]
) -> tuple[_PreparedStatement, tuple[Callable[[Any], Any], ...]]:
    """Built once per grant and set of compared columns."""
    table = _version_table(grant.table_name, tuple(DataType(field["data_type"]) for field in grant.version_fields))
    columns = [table.c[column] for column in (*key_columns, *compared)]
    conditions = [column == _bound(f"value_{n}", column.type) for n, column in enumerate(columns)]
    # No LIMIT in the look-up: on a version without statistics yet, PostgreSQL would rather walk the table for a
    # first row than read the key index. A key is one row; the first of several is the one the batch path takes.
    stored = dict.fromkeys([ROW_COLUMN, *(field.column for field in grant.fields)])
    found = select(*(table.c[column] for column in stored)).where(*conditions, *scoped(table, grant)).cte("found")
    first = select(found).limit(literal_column("1")).subquery("first")
    # Masked and written as JSON for that row only: the plan's estimate then does not grow with the rows the index
    # may find, and PostgreSQL keeps one generic plan of the prepared statement instead of planning every call.
    cells = [(field.name, _json_cell_sql(field, first.c[field.column], grant)) for field in grant.fields]
    shown = select(_json_object(cells)).select_from(first).scalar_subquery()
    matched = select(func.count()).select_from(first).scalar_subquery()
    # The event's values but who asked and when are the grant's: written into the statement with it.
    event = audit.alongside_values(verification.audit_event(_NO_ONE, grant, _ONE_RECORD))
    values: list[Any] = [
        _bound(f"audit_{name}", _TABLE.c[name].type)
        if name in _PER_CALL
        else literal(event[f"audit_{name}"], _TABLE.c[name].type)
        for name in _BOUND
    ]
    values += [cast(literal(event[f"audit_{name}"], String()), _TABLE.c[name].type) for name in _AS_JSON]
    written = event["audit_detail"]  # {"records": 1, "matched": 0}, as the batch path writes it
    assert written.endswith('"matched": 0}'), written
    detail = literal(written.removesuffix("0}"), String()).concat(cast(matched, Text)).concat(literal("}"))
    values += [cast(detail, JSON), _bound("audit_at", _TABLE.c.at.type)]
    logged = insert(AuditEvent).from_select([*_BOUND, *_AS_JSON, "detail", "at"], select(*values)).cte("logged")
    statement: Select[Any] = replacement_traverse(select(shown).add_cte(logged), {}, _written_out)  # type: ignore[assignment]
    compiled = statement.compile(dialect=_NUMBERED, compile_kwargs={"render_postcompile": True})
    prepared = _PreparedStatement(str(compiled).encode(), tuple(compiled.positiontup or ()), dict(compiled.params))
    processors = tuple(column.type._cached_bind_processor(_NUMBERED) or _unchanged for column in columns)
    return prepared, processors
