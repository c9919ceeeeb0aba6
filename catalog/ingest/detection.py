"""Automatic detection while ingesting: a bounded sample of each field of a new batch is profiled, and findings
become proposals in the officers' review queue. Detection never blocks publishing: if it fails, the batch is
published all the same and the failure is logged."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pyarrow as pa
from sqlalchemy.orm import Session

from catalog.classification import review
from catalog.classification.detection import DEFAULT_SETTINGS, profile_field
from catalog.classification.repository import load_scheme
from catalog.ingest.conform import ConformedChunk
from catalog.items.schemas import FieldDeclaration

log = logging.getLogger(__name__)


class FieldSampler:
    """Keeps the first ``size`` non-null values of every field as the chunks go by, and counts every row."""

    def __init__(self, fields: Sequence[FieldDeclaration], size: int = DEFAULT_SETTINGS.sample_size) -> None:
        self.fields, self.size = list(fields), size
        self.samples: dict[str, list[pa.Array]] = {field.name: [] for field in fields}
        self.kept = dict.fromkeys(self.samples, 0)
        self.rows = 0

    def add(self, chunk: ConformedChunk) -> None:
        self.rows += chunk.size
        for name, wanted in self.kept.items():
            if wanted >= self.size:
                continue
            values = chunk.table.column(name).drop_null()[: self.size - wanted].combine_chunks()
            self.samples[name].append(values)
            self.kept[name] += len(values)


def propose_from(session: Session, item_id: int, sampler: FieldSampler, batch_id: int) -> int:
    """Proposals for the fields whose values look more sensitive than declared; how many are new (0 if
    detection failed: it is logged and the batch stands)."""
    try:
        with session.begin_nested():
            scheme = load_scheme(session)
            profiles = {
                field.name: profile_field(
                    pa.chunked_array(sampler.samples[field.name], type=_type_of(sampler.samples[field.name])),
                    field.semantic_type, field.level, scheme,
                )
                for field in sampler.fields
            }  # fmt: skip
            return review.record_findings(session, item_id, profiles, batch_id)
    except Exception:  # detection is advice: a failure of it must never undo a publication
        log.exception("sensitive-field detection failed for item %s, batch %s", item_id, batch_id)
        return 0


def _type_of(arrays: list[pa.Array]) -> pa.DataType:
    return arrays[0].type if arrays else pa.string()
