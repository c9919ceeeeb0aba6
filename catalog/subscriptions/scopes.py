"""Row-level scopes: a subscription limited to some rows of its item, for example a street office to its own street
(所属街道 in [坪山街道]) or a date range (登记日期 from 2024-01-01 to 2024-12-31).

A scope is a set of conditions, one per field, all of which a row meets: ``in`` (the field equals one of the values)
or a range (``from`` and/or ``to``, both inclusive, on integers, decimals, dates and times). The consumer asks for
one with its request; the provider's steward sets one, or narrows the one asked for, when approving (a data officer
may narrow it further). Written as JSON: ``{"所属街道": {"in": ["坪山街道"]}, "登记日期": {"from": "2024-01-01"}}``.
A row whose field is empty meets no condition on it. A scope's fields are among the subscription's fields and
shown to it unmasked: a condition on a field it may not see would tell that field's values (which rows meet it), so
a scope on one is refused at request and approval, and a scope whose field has become masked since (its level
raised, the approval lowered) serves nothing, as does one that no longer fits the item (its field gone, its values
no longer of the field's type). On SQLite, where decimals are stored as their text, a range on a decimal is refused
(their text does not sort as the numbers do): a list of values is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from catalog.classification.types import DataType
from catalog.errors import DomainError, Forbidden

MAX_CONDITIONS = 10
MAX_VALUES = 200


class InvalidScope(DomainError):
    code = "invalid_scope"


class ScopeUnavailable(Forbidden):
    """The approved scope cannot be applied to the version asked for: nothing is served."""

    code = "scope_unavailable"


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    values: list[str] | None = Field(default=None, alias="in", min_length=1, max_length=MAX_VALUES,
                                     description="The field equals one of these.")  # fmt: skip
    start: str | None = Field(default=None, alias="from", max_length=64, description="At least this (inclusive).")
    end: str | None = Field(default=None, alias="to", max_length=64, description="At most this (inclusive).")

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        ranged = self.start is not None or self.end is not None
        if (self.values is None) == (not ranged):
            raise ValueError("a condition is either in (a list of values) or a range (from and/or to)")
        if self.values is not None and any(len(value) > 200 or "\x00" in value for value in self.values):
            raise ValueError("a value is at most 200 characters")
        return self


class Scope(RootModel[dict[str, Condition]]):
    """Conditions by field name; a row meets all of them."""

    root: dict[str, Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)


@dataclass(frozen=True)
class Term:
    """A condition with its values typed as the field's: what a query applies."""

    field: str
    values: tuple[Any, ...] | None
    start: Any = None
    end: Any = None

    def holds_within(self, wider: Term) -> bool:
        """Whether every value this term lets through, the wider one lets through too."""
        if wider.values is not None:
            return self.values is not None and set(self.values) <= set(wider.values)
        if self.values is not None:
            return all(_in_range(value, wider.start, wider.end) for value in self.values)
        starts_inside = wider.start is None or (self.start is not None and self.start >= wider.start)
        ends_inside = wider.end is None or (self.end is not None and self.end <= wider.end)
        return starts_inside and ends_inside


def _in_range(value: Any, start: Any, end: Any) -> bool:
    return (start is None or value >= start) and (end is None or value <= end)


def stored(scope: Scope | None, types: Mapping[str, DataType]) -> dict[str, Any] | None:
    """A scope checked against the item's fields (their data types by name), as the subscription stores it: values
    in their canonical text, ``in`` values distinct and sorted."""
    if scope is None:
        return None
    terms = _typed(scope.model_dump(by_alias=True, exclude_none=True), types, InvalidScope)
    return {term.field: _written(term) for term in terms}


def terms(stored_scope: Mapping[str, Any] | None, types: Mapping[str, DataType]) -> tuple[Term, ...]:
    """A stored scope as terms a query applies (ScopeUnavailable if it no longer fits the item)."""
    return () if not stored_scope else _typed(stored_scope, types, ScopeUnavailable)


def within_fields(stored_scope: Mapping[str, Any] | None, fields: Sequence[str]) -> None:
    """InvalidScope unless every field the scope limits rows by is one the subscription asks for."""
    outside = sorted(set(stored_scope or {}) - set(fields))
    if outside:
        raise InvalidScope(f"the scope limits rows by {', '.join(outside)}, which the subscription does not ask for: "
                           "a scope's fields are among the subscription's fields")  # fmt: skip


def unmasked_at(stored_scope: Mapping[str, Any] | None, levels: Mapping[str, int], level: int) -> None:
    """InvalidScope if a field of the scope would be masked at this approved level: a condition on a masked field
    would tell its values."""
    above = sorted(name for name in stored_scope or {} if levels.get(name, 0) > level)
    if above:
        raise InvalidScope(f"the scope limits rows by {', '.join(above)}, above the level {level} approved: masked, a "
                           "condition on it would tell its values; approve at its level, or reject")  # fmt: skip


def storable_here(stored_scope: Mapping[str, Any] | None, types: Mapping[str, DataType], dialect: str,
                  error: type[DomainError] = InvalidScope) -> None:  # fmt: skip
    """On SQLite decimals are stored as text, which does not sort as the numbers do: no range on one there."""
    if dialect != "sqlite":
        return
    ranged = sorted(name for name, condition in (stored_scope or {}).items()
                    if "in" not in condition and types.get(name) is DataType.DECIMAL)  # fmt: skip
    if ranged:
        raise error(f"the scope's {', '.join(ranged)}: a range on a decimal needs PostgreSQL (the embedded SQLite "
                    "stores decimals as text); give a list of values (in)")  # fmt: skip


def narrows(granted: Mapping[str, Any] | None, asked: Mapping[str, Any] | None, types: Mapping[str, DataType]) -> bool:
    """Whether a granted scope lets through no row the one asked for would not (no scope: every row)."""
    if not asked:
        return True
    if not granted:
        return False
    inner = {term.field: term for term in terms(granted, types)}
    return all(term.field in inner and inner[term.field].holds_within(term) for term in terms(asked, types))


def describe(stored_scope: Mapping[str, Any] | None) -> str:
    """One line for people and logs: 所属街道 in 坪山街道, 龙田街道; 登记日期 from 2024-01-01."""
    if not stored_scope:
        return ""
    parts = []
    for name, condition in stored_scope.items():
        if "in" in condition:
            parts.append(f"{name} in {', '.join(condition['in'])}")
        else:
            bounds = [f"{word} {condition[word]}" for word in ("from", "to") if condition.get(word) is not None]
            parts.append(f"{name} {' '.join(bounds)}")
    return "; ".join(parts)


def _typed(raw: Mapping[str, Any], types: Mapping[str, DataType], error: type[DomainError]) -> tuple[Term, ...]:
    found = []
    for name, condition in sorted(raw.items()):
        data_type = types.get(name)
        if data_type is None:
            raise error(f"the scope names {name}, which is not a field of the item")
        if "in" not in condition and not data_type.ordered:
            raise error(f"the scope's {name} is a {data_type.value}: it takes a list of values (in), not a range")
        try:
            term = _term(name, condition, data_type)
        except ValueError:  # the value itself is not repeated: scopes can name people's streets, dates of birth …
            raise error(f"the scope's {name}: a value given is not a {data_type.value}") from None
        if term.start is not None and term.end is not None and term.start > term.end:
            raise error(f"the scope's {name}: from is after to")
        found.append(term)
    return tuple(found)


def _term(name: str, condition: Mapping[str, Any], data_type: DataType) -> Term:
    if "in" in condition:
        return Term(name, tuple(sorted({_value(data_type, value) for value in condition["in"]})))
    start, end = (
        None if condition.get(word) is None else _value(data_type, condition[word]) for word in ("from", "to")
    )
    return Term(name, None, start, end)


def _value(data_type: DataType, text: Any) -> Any:
    value = data_type.parse(str(text))
    if getattr(value, "tzinfo", None) is not None:  # times are stored as the department sent them, without a zone
        raise ValueError("a time with a zone")
    return value


def _written(term: Term) -> dict[str, Any]:
    if term.values is not None:
        return {"in": [_text(value) for value in term.values]}
    return {word: _text(value) for word, value in (("from", term.start), ("to", term.end)) if value is not None}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
