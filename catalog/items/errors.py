from __future__ import annotations

from dataclasses import dataclass

from catalog.errors import Conflict, DomainError, InvalidTransition, NotFound


@dataclass(frozen=True, order=True)
class DeclarationProblem:
    """One thing wrong with a declaration, located by item code and field name where known."""

    item: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [
            part
            for part in (
                f"item {self.item}" if self.item else None,
                f"field {self.field}" if self.field else None,
            )
            if part
        ]
        return f"{', '.join(where)}: {self.message}" if where else self.message


class InvalidDeclaration(DomainError):
    code = "invalid_declaration"

    def __init__(self, problems: list[DeclarationProblem]) -> None:
        self.problems = sorted(set(problems), key=lambda p: (p.item or "", p.field or "", p.message))
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the declaration; nothing was written:\n{lines}")


class ItemNotFound(NotFound):
    code = "item_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"catalog item {code} does not exist")


class IllegalStatusChange(InvalidTransition):
    code = "illegal_status_change"


class ItemExists(Conflict):
    code = "item_exists"

    def __init__(self, code: str) -> None:
        super().__init__(f"catalog item {code} already exists")


class InvalidActor(DomainError):
    code = "invalid_actor"


class FieldsNotReviewed(InvalidTransition):
    code = "fields_not_reviewed"
