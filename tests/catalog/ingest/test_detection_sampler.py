"""The sample detection profiles is drawn from the whole export, whatever order its rows come in."""

from __future__ import annotations

import pyarrow as pa

from catalog.classification.identifiers import phone_valid
from catalog.ingest.conform import ConformedChunk
from catalog.ingest.detection import FieldSampler
from catalog.items.schemas import FieldDeclaration

FIELD = FieldDeclaration(name="联系方式", level=1)


def chunks(values: list[str | None], size: int) -> list[ConformedChunk]:
    return [
        ConformedChunk(start + 1, pa.table({FIELD.name: pa.array(values[start : start + size], pa.string())}), [])
        for start in range(0, len(values), size)
    ]


def sampled(values: list[str | None], size: int = 1000, chunk: int = 7000, seed: int = 0) -> pa.Array:
    sampler = FieldSampler([FIELD], size=size, seed=seed)
    for part in chunks(values, chunk):
        sampler.add(part)
    assert sampler.rows == len(values) and not sampler.failed
    return sampler.values(FIELD.name)


def test_an_export_sorted_by_the_field_cannot_hide_its_later_rows() -> None:
    phones = [f"138{n:08d}" for n in range(30_000)]
    values: list[str | None] = [*(["暂无"] * 30_000), *phones]  # sorted: the phone numbers all come last
    sample = sampled(values)
    share = phone_valid(sample).mean()
    assert len(sample) == 1000 and 0.4 < share < 0.6  # the first 1,000 rows alone would give 0


def test_the_sample_is_the_same_for_the_same_export_and_counts_nulls_out() -> None:
    values: list[str | None] = [None if n % 3 == 0 else f"v{n}" for n in range(20_000)]
    first, again = sampled(values), sampled(values)
    assert first.equals(again) and first.null_count == 0
    assert 600 < len(first) < 730  # two thirds of 1,000 sampled rows hold a value
    assert len(sampled(values[:500])) == len([v for v in values[:500] if v is not None])  # a small export whole
