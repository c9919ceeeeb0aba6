"""A run record's reasons, said in the page's language: each recorded reason is matched
against the phrases catalog/ingest/reasons.py records them with, and said again from the same parts (those that are
phrases themselves too). A reason that matches none (a refusal's own message) is shown as recorded."""

from __future__ import annotations

import functools
import re

from api.console import i18n, terms
from api.console.i18n import marked as _
from catalog.ingest.reasons import REASONS

SAID = {
    "unchecked": _("%(field)s: %(rule)s could not be checked: %(error)s"),
    "too_few_rows": _("%(field)s: %(rule)s failed: %(observed)s rows, below %(expected)s"),
    "failed": _("%(field)s: %(rule)s failed (observed %(observed)s)"),
    "failed_rows": _("%(field)s: %(rule)s failed for %(failed)s row(s) (rows %(rows)s)"),
    "share_of_previous": _("the threshold %(minimum)s (%(share)s%% of the previous version's %(previous)s rows)"),
    "never_empty": _("the minimum of %(minimum)s row(s) (an export is never empty)"),
    "run_ended": _("%(what)s; the raw export is kept, the current version is unchanged, and the next run ingests "
                   "the export again"),
    "unexpected_error": _("an unexpected error (%(error)s)"),
    "stopped": _("the run was stopped"),
    "died": _("the run ended before it finished; the raw export is kept, the current version is unchanged, and the "
              "next run ingests the export again"),
    "already_ingested": _("already ingested as batch %(batch)s (%(outcome)s)"),
}  # fmt: skip
PHRASED = ("expected", "what")  # parts that are phrases of their own
LONGEST = 600  # characters of a reason matched against the phrases


def said(language: str, recorded: str) -> str:
    """A recorded reason in the language, or as recorded when it is no phrase of the catalog's (or is longer than
    any of them: a long text, which may come from an export, is not worth the matching)."""
    if len(recorded) > LONGEST:
        return recorded
    for kind, pattern in _patterns().items():
        found = pattern.fullmatch(recorded)
        if found:
            parts = {name: _part(language, name, value) for name, value in found.groupdict().items()}
            return i18n.gettext(language, SAID[kind], **parts)
    return recorded


def _part(language: str, name: str, value: str) -> str:
    if name == "field" and value == "*":
        return i18n.gettext(language, _("the whole batch"))
    if name == "rule":
        return terms.rule(language, value)
    if name == "outcome":
        return terms.outcome(language, value)
    return said(language, value) if name in PHRASED else value


@functools.cache
def _patterns() -> dict[str, re.Pattern[str]]:
    """Each phrase as a pattern: its text literally, each named part any text (the shortest that fits). Those with
    fewer parts are tried first: a phrase of none ("the run ended before it finished; ...") is also what another
    says around a part ("{what}; the raw export is kept ...")."""
    fewest_parts_first = sorted(REASONS.items(), key=lambda phrase: phrase[1].count("{"))
    return {kind: re.compile(re.sub(r"\\\{(\w+)\\\}", _group, re.escape(text)), re.DOTALL)
            for kind, text in fewest_parts_first}  # fmt: skip


def _group(part: re.Match[str]) -> str:
    """A part's pattern: a field and a rule hold no colon (what follows one is the rest of the phrase)."""
    name = part.group(1)
    return f"(?P<{name}>[^:]+?)" if name in ("field", "rule") else f"(?P<{name}>.+?)"
