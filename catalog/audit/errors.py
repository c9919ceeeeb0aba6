"""The audit trail's domain errors, each with a stable code."""

from __future__ import annotations

from catalog.errors import DomainError, Forbidden, NotFound


class ReaderNotFound(NotFound):
    code = "user_not_found"


class ReadForbidden(Forbidden):
    code = "forbidden"


class NothingSealed(NotFound):
    code = "audit_not_sealed"

    def __init__(self) -> None:
        super().__init__("no audit block has been sealed yet")


class NeverVerified(NotFound):
    code = "audit_not_verified"

    def __init__(self) -> None:
        super().__init__("the audit chain has not been verified yet")


class SigningKeyMissing(DomainError):
    code = "audit_signing_key_missing"


class SigningKeyUnusable(DomainError):
    code = "audit_signing_key_unusable"


class SealNeedsOwnTransaction(DomainError):
    code = "audit_seal_needs_own_transaction"

    def __init__(self) -> None:
        super().__init__("sealing must run in a transaction of its own, before that transaction writes anything")


class SealUnsafe(DomainError):
    code = "audit_seal_unsafe"


class InvalidHead(DomainError):
    code = "audit_head_invalid"


class ChainBroken(DomainError):
    """A verification found the trail or its chain altered."""

    code = "audit_chain_broken"
