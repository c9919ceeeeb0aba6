from __future__ import annotations

import re
from enum import StrEnum
from urllib.parse import unquote

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


# A SQL source names the environment variable that holds its database URL; never one of the platform's own (its
# database, Airflow's): a steward's query must not read the platform's users, tokens or audit trail.
PLATFORM_VARIABLE_PREFIXES = ("DATASHARE_", "AIRFLOW")
LOCATION_RULES = {
    SourceAccess.FILE_DROP: re.compile(r"^(?![/\\])(?![a-z][a-z0-9+.-]*:)[^\s]+$|^(file|s3|gs|gcs|abfs|az)://\S+$"),
    SourceAccess.HTTP: re.compile(r"^https?://[^\s/]+\S*$"),
    SourceAccess.SQL: re.compile(rf"^env:(?!{'|'.join(PLATFORM_VARIABLE_PREFIXES)})[A-Z_][A-Z0-9_]*$"),
}
LOCATION_HELP = {
    SourceAccess.FILE_DROP: "a folder under the data folder (no '..') or a file://, s3://, gs:// or abfs:// URL",
    SourceAccess.HTTP: "an http:// or https:// URL",
    SourceAccess.SQL: "env:NAME, the environment variable holding the database URL (not DATASHARE_* or AIRFLOW*)",
}


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
        access = self.access.value
        if (self.access is SourceAccess.SQL) != (self.query is not None):
            raise ValueError("a query is required for sql source systems and applies to no other")
        if self.file_pattern is not None and any(mark in self.file_pattern for mark in ("/", "\\", "..")):
            raise ValueError(f"file_pattern {self.file_pattern!r} names files, not folders: no /, \\ or '..'")
        if self.file_pattern is not None and self.access is not SourceAccess.FILE_DROP:
            raise ValueError(f"a file_pattern only applies to file_drop source systems, not {access}")
        if not LOCATION_RULES[self.access].match(self.location) or ".." in unquote(self.location).split("/"):
            raise ValueError(f"location {self.location!r} is not valid for {access}: {LOCATION_HELP[self.access]}")
        return self


class DepartmentDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, pattern=CODE_PATTERN)
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    kind: DepartmentKind
    active: bool = True
    source_systems: list[SourceSystemDeclaration] = Field(default_factory=list)
