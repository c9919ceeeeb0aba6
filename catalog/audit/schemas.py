"""What the audit trail's readers, sealers and verifiers exchange."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ID = 2_147_483_647  # audit event ids are 32-bit integers
MAX_PAGE = 1000


class AuditQuery(BaseModel):
    """Filters of a read of the trail (each optional; all given must match) and the page wanted: newest first,
    ``before`` the id where the previous page stopped (its ``next_before``). Times without a zone are UTC."""

    action: str | None = Field(default=None, max_length=64)
    principal: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=32)
    item: str | None = Field(default=None, max_length=64)
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before
    before: int | None = Field(default=None, ge=1, le=MAX_ID)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)

    @field_validator("since", "until")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        """Aware UTC (no zone given: UTC), within what datetime can hold."""
        if value is None or value.tzinfo is None:
            return None if value is None else value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # a zone offset pushed it past year 1 or 9999
            return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)

    def filters(self) -> dict[str, Any]:
        """The filters given (for the audit row of the read itself)."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"limit", "before"})


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    principal: str
    department: str | None
    action: str
    outcome: str
    item_code: str | None
    version: int | None
    subscription_id: int | None
    fields_returned: list[str]
    fields_masked: list[str]
    rows: int | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """A page of the trail, newest first; ``next_before`` continues it (null: this is the last page)."""

    events: list[AuditEventRead]
    next_before: int | None


class SignedHead(BaseModel):
    """A sealed block as a head of the chain: everything its hash covers, the hash and the platform key's
    signature of it. Anyone can recompute the hash from these fields and check the signature with the public key;
    another department's system keeps it, and ``datashare audit verify --head`` checks the chain still holds it."""

    block: int
    first_id: int
    last_id: int
    row_count: int
    rows_hash: str
    previous_hash: str
    sealed_at: str  # the canonical UTC form that is hashed: 2026-12-01T08:00:00.000000Z
    hash: str
    public_key: str  # base64 of the raw Ed25519 public key
    signature: str  # base64 of the Ed25519 signature of b"datashare audit block " + hash


class UnsealedRead(BaseModel):
    """Events not in any block yet: how many and their id range."""

    count: int
    first_id: int | None
    last_id: int | None


class SealReport(BaseModel):
    sealed_blocks: int
    sealed_rows: int
    head: SignedHead | None  # the chain's newest block after this run
    unsealed: UnsealedRead
    waiting: bool = False  # transactions that may still add events below the watermark outlasted the wait
    busy: bool = False  # another seal was running (PostgreSQL): it does the work


class FailureRead(BaseModel):
    """One thing verification found wrong: its kind, the block and the event concerned (where known)."""

    kind: str
    message: str
    block: int | None = None
    audit_id: int | None = None


class VerificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    started_at: datetime
    finished_at: datetime
    by: str
    ok: bool
    from_block: int | None
    to_block: int | None
    blocks_checked: int
    rows_checked: int
    heads_checked: int
    head_block: int | None
    head_hash: str | None
    unsealed_count: int
    unsealed_first_id: int | None
    unsealed_last_id: int | None
    failures: list[FailureRead]
