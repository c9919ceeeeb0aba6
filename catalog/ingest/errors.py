from __future__ import annotations

from catalog.errors import DomainError


class ExportNotDecodable(DomainError):
    """The raw export is empty or is not text in the encodings tried: it is kept, never published."""

    code = "export_not_decodable"


class ExportNotReadable(DomainError):
    """The decoded export is not a table in its declared format (with the line or row that broke it)."""

    code = "export_not_readable"


class DeltaNotApplicable(DomainError):
    """An incremental export cannot be applied: the item has no version, or its fields changed since the current one."""

    code = "delta_not_applicable"


class SchemaDrift(DomainError):
    """The export's columns are not the item's declared fields."""

    code = "schema_drift"

    def __init__(self, missing: list[str], unexpected: list[str]) -> None:
        self.missing = missing
        self.unexpected = unexpected
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected column(s): {', '.join(unexpected)}")
        super().__init__("schema drift: " + "; ".join(parts))
