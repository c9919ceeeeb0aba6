from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from catalog.classification.types import DataType, MaskingRule, SemanticType, default_masking

ITEM_CODE_PATTERN = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$"

# Presets understood by Airflow; each item is pulled on this schedule.
FREQUENCY_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")


class SharingType(StrEnum):
    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NOT_SHARED = "not_shared"  # 不予共享


class ItemStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    RETIRED = "retired"


# Bounds are kept as text; YAML numbers are accepted too.
Bound = Annotated[
    Annotated[str, Field(max_length=64)] | None,
    BeforeValidator(lambda value: None if value is None else str(value)),
    WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 64}, {"type": "number"}, {"type": "null"}]}),
]


class FieldDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    label: str = Field(default="", max_length=200)
    description: str = ""
    data_type: DataType = DataType.STRING
    nullable: bool | None = Field(default=None, description="Defaults to true, and to false for key fields.")
    key: bool = False
    semantic_type: SemanticType = SemanticType.NONE
    allowed_values: list[str] | None = Field(default=None, min_length=1)
    pattern: str | None = Field(default=None, max_length=500)
    minimum: Bound = None
    maximum: Bound = None
    level: int
    masking: MaskingRule | None = None

    @field_validator("name")
    @classmethod
    def _name_is_trimmed(cls, name: str) -> str:
        if name != name.strip():
            raise ValueError("field name has leading or trailing spaces")
        return name

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"pattern is not a valid regular expression: {error}") from None
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> FieldDeclaration:
        if self.key and self.nullable:
            raise ValueError("a key field cannot be nullable")
        if self.nullable is None:
            self.nullable = not self.key
        if self.masking is None:
            self.masking = default_masking(self.semantic_type)
        if self.pattern is not None and self.data_type is not DataType.STRING:
            raise ValueError(f"a pattern only applies to string fields, not {self.data_type.value}")
        self._check_bounds()
        if self.allowed_values is not None:
            if len(set(self.allowed_values)) != len(self.allowed_values):
                raise ValueError("allowed_values lists a value twice")
            for value in self.allowed_values:
                _parse_value(self.data_type, value, "allowed value")
        return self

    def _check_bounds(self) -> None:
        if self.minimum is None and self.maximum is None:
            return
        if self.data_type not in VALUE_PARSERS:
            raise ValueError(f"minimum/maximum do not apply to {self.data_type.value} fields")
        low = None if self.minimum is None else _parse_value(self.data_type, self.minimum, "minimum")
        high = None if self.maximum is None else _parse_value(self.data_type, self.maximum, "maximum")
        if low is not None and high is not None and low > high:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")


VALUE_PARSERS: dict[DataType, Any] = {
    DataType.INTEGER: int,
    DataType.DECIMAL: Decimal,
    DataType.DATE: date.fromisoformat,
    DataType.DATETIME: datetime.fromisoformat,
}


def _parse_value(data_type: DataType, text: str, what: str) -> Any:
    parser = VALUE_PARSERS.get(data_type)
    if parser is None:
        return text
    try:
        return parser(text)
    except (ValueError, InvalidOperation):
        raise ValueError(f"{what} {text!r} is not a valid {data_type.value}") from None


def validate_frequency(frequency: str) -> str:
    if frequency in FREQUENCY_PRESETS:
        return frequency
    if len(frequency.split()) != 5 or not croniter.is_valid(frequency):
        presets = ", ".join(FREQUENCY_PRESETS)
        raise ValueError(f"update_frequency {frequency!r} is neither a 5-field cron expression nor one of {presets}")
    return frequency


class BadRowPolicy(StrEnum):
    REJECT = "reject"  # any failing row quarantines the whole batch
    DROP = "drop"  # failing rows go to the reject report and the rest is published, up to max_bad_share


class QualityPolicy(BaseModel):
    """How an item's batches are judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bad_rows: BadRowPolicy = BadRowPolicy.REJECT
    max_bad_share: float = Field(default=0.01, ge=0, le=1, description="With drop: the largest share of rows dropped.")
    max_volume_drop: float = Field(
        default=0.5, ge=0, le=1, description="The row count may fall by at most this share of the current version's."
    )


class LoadMode(StrEnum):
    FULL = "full"  # every export is the whole item
    INCREMENTAL = "incremental"  # an export with the operation column carries changed and deleted keys only


class LoadPolicy(BaseModel):
    """How the department's exports load into versions. With ``incremental``, an export that has the operation
    column is merged into the current version as the next one (each row an insert or update of its key, or a
    deletion); one without it is a full export, as always."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: LoadMode = LoadMode.FULL
    operation_column: str = Field(
        default="_op",
        min_length=1,
        max_length=128,
        description="The column of an incremental export saying what each row is: I (insert), U (update) or D "
        "(delete); insert, update, upsert, delete and 新增, 修改, 删除 are understood too, in any case.",
    )

    @field_validator("operation_column")
    @classmethod
    def _column_is_trimmed(cls, name: str) -> str:
        if name != name.strip():
            raise ValueError("the operation column's name has leading or trailing spaces")
        return name


class ItemDeclaration(BaseModel):
    """An item as declared by its provider department: the unit of import, export and history."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=ITEM_CODE_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    department: str = Field(min_length=1, max_length=32)
    source_system: str | None = Field(default=None, max_length=64)
    update_frequency: str = Field(max_length=64)
    sharing_type: SharingType
    open_data: bool = False
    tags: list[str] = Field(default_factory=list)
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    load: LoadPolicy = Field(default_factory=LoadPolicy)
    status: ItemStatus | None = Field(
        default=None,
        description="New items are drafts; only a data officer's catalog import may register one in another "
        "status (its fields are then approved as declared). An existing item's status changes only through "
        "lifecycle transitions, so a file either leaves it out or repeats it.",
    )
    fields: list[FieldDeclaration] = Field(min_length=1)

    _check_frequency = field_validator("update_frequency")(validate_frequency)

    @field_validator("tags")
    @classmethod
    def _tags_are_distinct(cls, tags: list[str]) -> list[str]:
        if any(not tag or tag != tag.strip() or len(tag) > 64 for tag in tags):
            raise ValueError("tags are 1 to 64 characters, without leading or trailing spaces")
        return sorted(set(tags))

    @model_validator(mode="after")
    def _consistent(self) -> ItemDeclaration:
        duplicates = [name for name, count in Counter(f.name for f in self.fields).items() if count > 1]
        if duplicates:
            raise ValueError(f"field {duplicates[0]!r} is declared more than once")
        if not any(field.key for field in self.fields):
            raise ValueError("no field is part of the key: mark at least one field with key: true")
        if any(field.name == self.load.operation_column for field in self.fields):
            raise ValueError(f"load.operation_column {self.load.operation_column!r} is a declared field's name")
        if self.open_data and self.sharing_type is SharingType.NOT_SHARED:
            raise ValueError("an open-data item cannot have sharing_type not_shared")
        unmasked = [f.name for f in self.fields if f.level >= 3 and f.masking is MaskingRule.NONE]
        if unmasked:
            raise ValueError(f"field {unmasked[0]!r} is level 3 or above: its masking rule cannot be none")
        return self

    @property
    def highest_level(self) -> int:
        """The item's classification level: the highest of its fields' levels."""
        return max(field.level for field in self.fields)

    @property
    def key_fields(self) -> list[str]:
        return [field.name for field in self.fields if field.key]


class ItemSummary(BaseModel):
    code: str
    title: str
    department: str
    level: int
    sharing_type: SharingType
    open_data: bool
    status: ItemStatus
    tags: list[str]
    update_frequency: str
    updated_at: datetime


class ItemRead(ItemDeclaration):
    status: ItemStatus
    level: int
    created_at: datetime
    updated_at: datetime


class AwaitingReview(BaseModel):
    """A classification change of an approved field, put to the data officers: one that only raises protection
    is already served (``applied``); any other waits for an officer and the field is served as it was."""

    field: str
    level: int
    semantic_type: str
    masking: str
    applied: bool


class ItemUpdateRead(ItemRead):
    awaiting_review: list[AwaitingReview] = Field(
        default_factory=list, description="Classification changes of approved fields that went to the officers."
    )


class ItemChangeRead(BaseModel):
    changed_at: datetime
    actor: str
    action: str
    changes: dict[str, Any]


SortKey = Literal["code", "-code", "title", "-title", "level", "-level", "updated_at", "-updated_at"]


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    department: str | None = None
    level: int | None = Field(default=None, ge=1, le=4)
    max_level: int | None = Field(default=None, ge=1, le=4)
    sharing_type: SharingType | None = None
    open_data: bool | None = None
    status: ItemStatus | None = None
    tag: str | None = None
    sort: SortKey = "code"
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)


class SearchPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[ItemSummary]
