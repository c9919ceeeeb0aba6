"""Detection of sensitive fields: profile a field's values and compare what they look like with its declaration.

``profile_field`` takes a column of any size, counts its values and nulls in full (Arrow keeps the null count),
draws a bounded, deterministic sample of its non-null values and runs every recogniser of
``catalog.classification.identifiers`` over the sample. For each semantic type some values match, the profile
keeps the match share and a few examples, masked by the rule of that type: evidence for a data officer, never
a raw value. The profile carries a ``Finding`` when most values (``threshold``) are of a type other than the
declared one, or of a type whose minimum level in the classification scheme is above the declared level.

Pure functions: no database, no clock. The ingestion pipeline profiles each field of a new batch, and the review
workflow turns findings into proposals; detection never blocks publishing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from catalog.classification import identifiers
from catalog.classification.masking import mask_column
from catalog.classification.schemas import ClassificationScheme
from catalog.classification.types import MaskingRule, SemanticType

Values: TypeAlias = pd.Series | np.ndarray | pa.Array | pa.ChunkedArray | Sequence[object]
Detector: TypeAlias = Callable[[pa.Array], pd.Series]

# Checked identifiers first: on a tie of shares the type with a check character wins.
DETECTORS: dict[SemanticType, Detector] = {
    SemanticType.RESIDENT_ID: identifiers.resident_id_valid,
    SemanticType.USCC: identifiers.uscc_valid,
    SemanticType.BANK_CARD: identifiers.bank_card_valid,
    SemanticType.PHONE: identifiers.phone_valid,
    SemanticType.EMAIL: identifiers.email_valid,
    SemanticType.VEHICLE_PLATE: identifiers.vehicle_plate_valid,
    SemanticType.PERSON_NAME: identifiers.person_name_valid,
    SemanticType.ADDRESS: identifiers.address_valid,
}
# Types recognised by shape alone, not by a check character: a column of a few values repeated (a code list of
# community names, say) is not taken for names or addresses however well its values match.
HEURISTIC_TYPES = frozenset({SemanticType.PERSON_NAME, SemanticType.ADDRESS, SemanticType.VEHICLE_PLATE})
# How examples are shown as evidence: the type's reading mask where it keeps a recognisable shape (plates keep
# their province, USCCs their region like an ID number); never a raw value, never a keyed pseudonym.
EVIDENCE_MASKING: dict[SemanticType, MaskingRule] = {
    SemanticType.RESIDENT_ID: MaskingRule.ID_NUMBER,
    SemanticType.USCC: MaskingRule.ID_NUMBER,
    SemanticType.BANK_CARD: MaskingRule.ID_NUMBER,
    SemanticType.PHONE: MaskingRule.PHONE,
    SemanticType.EMAIL: MaskingRule.EMAIL,
    SemanticType.VEHICLE_PLATE: MaskingRule.NAME,
    SemanticType.PERSON_NAME: MaskingRule.NAME,
    SemanticType.ADDRESS: MaskingRule.ADDRESS,
}


class FindingReason(StrEnum):
    TYPE_DIFFERS = "type_differs"  # the values are of another semantic type than declared
    LEVEL_BELOW_MINIMUM = "level_below_minimum"  # the detected type's minimum level is above the declared level


@dataclass(frozen=True)
class DetectionSettings:
    sample_size: int = 10_000  # non-null values examined at most
    threshold: float = 0.8  # the share of sampled values a type needs for a finding
    examples: int = 3  # masked examples kept per detected type
    min_distinct: int = 20  # distinct sampled values a heuristic type needs (or half the sample, if fewer)
    seed: int = 0  # of the sample: the same column always gives the same profile


DEFAULT_SETTINGS = DetectionSettings()


@dataclass(frozen=True)
class Detection:
    semantic_type: SemanticType
    matches: int
    share: float  # matches / sampled
    examples: tuple[str, ...]  # masked by EVIDENCE_MASKING


@dataclass(frozen=True)
class Finding:
    detected_type: SemanticType
    share: float
    declared_type: SemanticType
    declared_level: int
    suggested_level: int  # the declared level raised to the detected type's minimum
    reasons: tuple[FindingReason, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class FieldProfile:
    values: int  # in the whole column, nulls included
    nulls: int  # in the whole column
    sampled: int  # non-null, non-blank values examined
    blank_in_sample: int  # empty or whitespace-only values drawn (not counted in ``sampled``)
    distinct_in_sample: int
    detections: tuple[Detection, ...]  # types with at least one match, highest share first
    finding: Finding | None

    def detected_type(self, threshold: float = DEFAULT_SETTINGS.threshold) -> SemanticType | None:
        """The type most sampled values are of, if its share reaches ``threshold``."""
        best = self.detections[0] if self.detections else None
        return best.semantic_type if best is not None and best.share >= threshold else None


def profile_field(
    values: Values,
    declared_type: SemanticType,
    declared_level: int,
    scheme: ClassificationScheme,
    settings: DetectionSettings = DEFAULT_SETTINGS,
) -> FieldProfile:
    """Profile one field's values against its declaration (see the module's docstring)."""
    column = _arrow_column(values)
    drawn = sample_values(column, settings.sample_size, settings.seed)
    sample = pc.utf8_trim_whitespace(identifiers.as_text(drawn))
    sample = sample.filter(pc.greater(pc.utf8_length(sample), 0))
    distinct = len(pc.unique(sample))
    detections = detect(sample, distinct, settings)
    return FieldProfile(
        values=len(column),
        nulls=column.null_count,
        sampled=len(sample),
        blank_in_sample=len(drawn) - len(sample),
        distinct_in_sample=distinct,
        detections=detections,
        finding=find(detections, declared_type, declared_level, scheme, settings.threshold),
    )


def _arrow_column(values: Values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return identifiers.as_text(pd.Series(list(values), dtype=object) if isinstance(values, Sequence) else values)


def sample_values(column: pa.Array, size: int, seed: int = 0) -> pa.Array:
    """At most ``size`` non-null values, drawn without replacement by a seeded generator, in column order."""
    present = column.drop_null()
    if len(present) <= size:
        return present
    rows = np.sort(np.random.default_rng(seed).choice(len(present), size=size, replace=False))
    return present.take(pa.array(rows, pa.int64()))


def detect(sample: pa.Array, distinct: int, settings: DetectionSettings = DEFAULT_SETTINGS) -> tuple[Detection, ...]:
    """Every type some sampled text values are of, highest share first (checked types first on a tie)."""
    if len(sample) == 0:
        return ()
    enough_distinct = distinct >= min(settings.min_distinct, len(sample) // 2)
    found = []
    for semantic_type, detector in DETECTORS.items():
        if semantic_type in HEURISTIC_TYPES and not enough_distinct:
            continue
        matched = detector(sample).to_numpy()
        count = int(matched.sum())
        if count:
            examples = _masked_examples(sample, matched, semantic_type, settings.examples)
            found.append(Detection(semantic_type, count, count / len(sample), examples))
    return tuple(sorted(found, key=lambda detection: -detection.share))  # stable: ties keep DETECTORS' order


def _masked_examples(sample: pa.Array, matched: np.ndarray, semantic_type: SemanticType, count: int) -> tuple[str, ...]:
    """The first ``count`` distinct matching values, masked (with no key: evidence rules never pseudonymise)."""
    chosen = pc.unique(sample.filter(pa.array(matched)))[:count]
    masked = mask_column(EVIDENCE_MASKING[semantic_type], chosen, b"")
    return tuple(str(value) for value in masked.to_pylist())


def find(
    detections: Sequence[Detection],
    declared_type: SemanticType,
    declared_level: int,
    scheme: ClassificationScheme,
    threshold: float = DEFAULT_SETTINGS.threshold,
) -> Finding | None:
    """A finding when the best detection reaches ``threshold`` and its type differs from the declared one or
    its minimum level is above the declared level."""
    if not detections or detections[0].share < threshold:
        return None
    best = detections[0]
    minimum = scheme.minimum_for(best.semantic_type)
    reasons = []
    if best.semantic_type is not declared_type:
        reasons.append(FindingReason.TYPE_DIFFERS)
    if minimum > declared_level:
        reasons.append(FindingReason.LEVEL_BELOW_MINIMUM)
    if not reasons:
        return None
    suggested = max(declared_level, minimum)
    return Finding(
        best.semantic_type, best.share, declared_type, declared_level, suggested, tuple(reasons), best.examples
    )
