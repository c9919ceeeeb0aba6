from __future__ import annotations

from catalog.errors import DomainError


class ExportNotDecodable(DomainError):
    """The raw export is empty or is not text in the encodings tried: it is kept, never published."""

    code = "export_not_decodable"
