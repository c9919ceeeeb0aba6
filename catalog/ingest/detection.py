"""Automatic detection while ingesting: a bounded sample of each field of a new batch is profiled, and findings
become proposals in the officers' review queue. Detection never blocks publishing: if it fails, the batch is
published all the same and the failure is logged."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.classification import review
from catalog.classification.detection import DEFAULT_SETTINGS, profile_field
from catalog.classification.repository import load_scheme
from catalog.ingest.conform import ConformedChunk
from catalog.items.schemas import FieldDeclaration

log = logsafe.logger(__name__)


class FieldSampler:
    """A uniform sample of at most ``size`` rows of the whole export, drawn as the chunks go by (reservoir
    sampling, seeded: the same export gives the same sample), so that an export sorted by some field cannot hide
    what its later rows hold. Every row is counted."""

    def __init__(
        self, fields: Sequence[FieldDeclaration], size: int = DEFAULT_SETTINGS.sample_size, seed: int = 0
    ) -> None:
        self.fields, self.size = list(fields), size
        self.rows = 0
        self.sample: pa.Table | None = None
        self.failed = False
        self._random = np.random.default_rng(seed)

    def add(self, chunk: ConformedChunk) -> None:
        if self.failed:
            return
        try:
            self._add(chunk.table)
        except Exception:  # sampling is for detection, which must never stop a batch
            log.exception("sampling for sensitive-field detection failed; this batch is published undetected")
            self.failed = True

    def _add(self, table: pa.Table) -> None:
        room = max(0, self.size - (0 if self.sample is None else self.sample.num_rows))
        head, rest = table.slice(0, room), table.slice(room)
        self.sample = head if self.sample is None else pa.concat_tables([self.sample, head], promote_options="default")
        if rest.num_rows:  # row k of the export (0-based) replaces a random kept row with probability size/(k+1)
            numbers = self.rows + room + np.arange(rest.num_rows)
            chosen = np.flatnonzero(self._random.random(rest.num_rows) < self.size / (numbers + 1))
            if len(chosen):
                order = np.arange(self.size)
                order[self._random.integers(0, self.size, len(chosen))] = self.size + np.arange(len(chosen))
                both = pa.concat_tables([self.sample, rest.take(pa.array(chosen))], promote_options="default")
                self.sample = both.take(pa.array(order))
        self.rows += table.num_rows

    def values(self, name: str) -> pa.Array:
        if self.sample is None:
            return pa.array([], pa.string())
        return self.sample.column(name).drop_null().combine_chunks()


def propose_from(session: Session, item_id: int, sampler: FieldSampler, batch_id: int) -> int:
    """Proposals for the fields whose values look more sensitive than declared; how many are new (0 if
    detection failed: it is logged and the batch stands)."""
    if sampler.failed:
        return 0
    try:
        with session.begin_nested():
            scheme = load_scheme(session)
            profiles = {
                field.name: profile_field(sampler.values(field.name), field.semantic_type, field.level, scheme)
                for field in sampler.fields
            }
            return review.record_findings(session, item_id, profiles, batch_id)
    except Exception:  # detection is advice: a failure of it must never undo a publication
        log.exception("sensitive-field detection failed for item %s, batch %s", item_id, batch_id)
        return 0
