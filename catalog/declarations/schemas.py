"""The declarative catalog file: departments, source systems and items with their fields.

Its JSON Schema (``catalog-file.schema.json`` beside this module) is generated from these models by
``datashare catalog schema``; a test keeps the committed copy current.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from catalog.classification.schemas import ClassificationScheme
from catalog.departments.schemas import DepartmentDeclaration
from catalog.items.schemas import ItemDeclaration


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid", title="datashare catalog file")

    version: Literal[1] = 1
    classification: ClassificationScheme | None = Field(
        default=None, description="Levels and minimum levels per semantic type; merged over those in force."
    )
    departments: list[DepartmentDeclaration] = Field(default_factory=list)
    items: list[ItemDeclaration] = Field(default_factory=list)

    # Codes of departments in the file that did not parse: their own problems are reported, so items
    # naming them are not also reported as naming an unknown department.
    _unparsed_department_codes: set[str] = PrivateAttr(default_factory=set)
