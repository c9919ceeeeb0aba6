from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

CODE_PATTERN = r"^[a-z][a-z0-9_-]*$"


class DepartmentKind(StrEnum):
    CITY_DEPARTMENT = "city_department"
    DISTRICT_UNIT = "district_unit"
    STREET_OFFICE = "street_office"


class SourceAccess(StrEnum):
    FILE_DROP = "file_drop"
    SQL = "sql"
    HTTP = "http"


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


class ExportEncoding(StrEnum):
    AUTO = "auto"
    UTF8 = "utf-8"
    UTF8_SIG = "utf-8-sig"
    GB18030 = "gb18030"
    GBK = "gbk"


class SourceSystemDeclaration(BaseModel):
    """How a department's system is reached.

    ``location`` is a URL: a drop folder (``file://``; a relative path is taken under the data folder),
    an HTTP endpoint, or for ``sql`` the name of an environment variable holding the database URL
    (``env:PSGA_DB_URL``), so no credentials live in the catalog.
    """

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    access: SourceAccess = SourceAccess.FILE_DROP
    location: str = Field(min_length=1, max_length=1000)
    file_pattern: str | None = Field(default=None, max_length=200)
    query: str | None = None
    format: ExportFormat = ExportFormat.CSV
    encoding: ExportEncoding = ExportEncoding.AUTO

    @model_validator(mode="after")
    def _access_needs(self) -> SourceSystemDeclaration:
        if self.access is SourceAccess.SQL and not self.query:
            raise ValueError("a sql source system needs a query")
        if self.access is not SourceAccess.SQL and self.query:
            raise ValueError(f"a query only applies to sql source systems, not {self.access.value}")
        if self.access is SourceAccess.SQL and not self.location.startswith("env:"):
            raise ValueError("a sql source system's location names an environment variable: env:NAME")
        return self


class DepartmentDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, pattern=CODE_PATTERN)
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    kind: DepartmentKind
    active: bool = True
    source_systems: list[SourceSystemDeclaration] = Field(default_factory=list)
