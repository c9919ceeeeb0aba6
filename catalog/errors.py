"""Domain errors: each carries a stable code; the edges map codes to HTTP statuses or exit codes."""

from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class Forbidden(DomainError):
    """The caller is known and the thing exists, but the caller may not have it (403)."""

    code = "forbidden"
