"""A row-level scope in the console's forms: up to three conditions, each a field and either its values (separated
by commas, 、 or new lines) or a range (from, to). Read into the JSON the API takes; what it means and whether it
holds is the API's to decide (catalog.subscriptions.scopes)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from api.console.web import Form

ROWS = 3
SEPARATORS = re.compile(r"[,，、;；\r\n]+")


def posted_scope(form: Form) -> dict[str, Any] | None:
    conditions: dict[str, Any] = {}
    for row in range(1, ROWS + 1):
        name = form.get(f"scope_field_{row}").strip()
        if not name:
            continue
        values = [value.strip() for value in SEPARATORS.split(form.get(f"scope_in_{row}")) if value.strip()]
        bounds = {word: text for word in ("from", "to") if (text := form.get(f"scope_{word}_{row}").strip())}
        conditions[name] = {"in": values} if values else bounds
    return conditions or None


def scope_values(scope: Mapping[str, Any] | None) -> dict[str, str]:
    """A scope as the form's values (to show it in the form again)."""
    values: dict[str, str] = {}
    for row, (name, condition) in enumerate((scope or {}).items(), 1):
        values[f"scope_field_{row}"] = name
        values[f"scope_in_{row}"] = "、".join(condition.get("in", []))
        values |= {f"scope_{word}_{row}": condition[word] for word in ("from", "to") if condition.get(word)}
    return values
