"""The reasons a run record gives, as phrases with named parts: recorded in English (the record, the CLI, the API,
the logs), and said again in another language by whoever shows them (the console: api/console/reasons.py)."""

from __future__ import annotations

from typing import Any

REASONS = {
    "unchecked": "{field}: {rule} could not be checked: {error}",
    "too_few_rows": "{field}: {rule} failed: {observed} rows, below {expected}",
    "failed": "{field}: {rule} failed (observed {observed})",
    "failed_rows": "{field}: {rule} failed for {failed} row(s) (rows {rows})",
    "share_of_previous": "the threshold {minimum} ({share}% of the previous version's {previous} rows)",
    "never_empty": "the minimum of {minimum} row(s) (an export is never empty)",
    "run_ended": "{what}; the raw export is kept, the current version is unchanged, and the next run ingests the "
    "export again",
    "unexpected_error": "an unexpected error ({error})",
    "stopped": "the run was stopped",
    "died": "the run ended before it finished; the raw export is kept, the current version is unchanged, and the "
    "next run ingests the export again",
    "already_ingested": "already ingested as batch {batch} ({outcome})",
}


def reason(kind: str, **parts: Any) -> str:
    return REASONS[kind].format(**parts)
