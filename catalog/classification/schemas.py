from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from catalog.classification.types import SemanticType


class LevelDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: int = Field(ge=1, le=99)
    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1, max_length=32)
    name_en: str = Field(min_length=1, max_length=64)


class ClassificationScheme(BaseModel):
    """The levels in force and the minimum level per semantic type."""

    model_config = ConfigDict(extra="forbid")

    levels: list[LevelDeclaration] = Field(default_factory=list)
    minimum_levels: dict[SemanticType, int] = Field(default_factory=dict)

    def level_numbers(self) -> set[int]:
        return {level.level for level in self.levels}

    def minimum_for(self, semantic_type: SemanticType) -> int:
        return self.minimum_levels.get(semantic_type, min(self.level_numbers(), default=1))
