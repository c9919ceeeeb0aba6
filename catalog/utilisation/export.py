"""The figures as CSV (API ``?format=csv`` or ``Accept: text/csv``, ``datashare usage … --csv``): one row per
department (the platform first, as ``*``), per item of a department, or per department and month. Text a spreadsheet
would take for a formula is quoted as the classification reports quote it."""

from __future__ import annotations

from typing import Any

from catalog.classification.reports import to_csv
from catalog.utilisation.schemas import (
    REQUEST_OUTCOMES,
    ConsumerFigures,
    DepartmentUtilisation,
    ItemUse,
    PlatformUtilisation,
    ProviderFigures,
    UtilisationHistory,
)

PROVIDER = ["published_items", "subscribed_items", "share_subscribed", "used_items", "share_used", "reads",
            "rows_read", "verifications", "deliveries", "rows_delivered", "reads_per_item", "rows_per_item",
            "deliveries_per_item", "verifications_per_item", "requests",
            *(f"requests_{outcome}" for outcome in REQUEST_OUTCOMES), "median_hours_to_active"]  # fmt: skip
CONSUMER = ["consumer_active_subscriptions", "consumer_items_used", "consumer_reads", "consumer_rows_read",
            "consumer_verifications", "consumer_deliveries", "consumer_rows_delivered", "consumer_requests",
            "consumer_median_hours_to_active"]  # fmt: skip
DEPARTMENTS = ["department", "name", *PROVIDER, *CONSUMER]
ITEMS = ["item", "title", "department", "reads", "rows_read", "verifications", "deliveries", "rows_delivered",
         "consumers"]  # fmt: skip
HISTORY = ["department", "name", "month", "published_items", "used_items", "share_used"]


def _provider(figures: ProviderFigures) -> dict[str, Any]:
    per_item = figures.per_item
    return {
        **figures.model_dump(include={"published_items", "subscribed_items", "share_subscribed", "used_items",
                                      "share_used"}),
        **figures.uses.model_dump(),
        "reads_per_item": per_item.reads, "rows_per_item": per_item.rows, "deliveries_per_item": per_item.deliveries,
        "verifications_per_item": per_item.verifications, "requests": figures.requests.made,
        **{f"requests_{outcome}": count for outcome, count in figures.requests.outcomes.items()},
        "median_hours_to_active": figures.requests.median_hours_to_active,
    }  # fmt: skip


def _consumer(figures: ConsumerFigures) -> dict[str, Any]:
    return {
        "consumer_active_subscriptions": figures.active_subscriptions, "consumer_items_used": figures.items_used,
        **{f"consumer_{name}": value for name, value in figures.uses.model_dump().items()},
        "consumer_requests": figures.requests.made,
        "consumer_median_hours_to_active": figures.requests.median_hours_to_active,
    }  # fmt: skip


def platform_csv(found: PlatformUtilisation) -> str:
    rows = [{"department": "*", "name": "", **_provider(found.platform)}]
    rows += [{"department": entry.department, "name": entry.name, **_provider(entry.as_provider),
              **_consumer(entry.as_consumer)} for entry in found.departments]  # fmt: skip
    return to_csv(rows, DEPARTMENTS)


def _item(entry: ItemUse) -> dict[str, Any]:
    consumers = [f"{consumer.department or 'anonymous'}:{consumer.uses.total}" for consumer in entry.consumers]
    return {"item": entry.item, "title": entry.title, "department": entry.department, **entry.uses.model_dump(),
            "consumers": consumers}  # fmt: skip


def department_csv(found: DepartmentUtilisation) -> str:
    return to_csv([_item(entry) for entry in found.items], ITEMS)


def history_csv(found: UtilisationHistory) -> str:
    rows = [{"department": entry.department, "name": entry.name, "month": period.month.isoformat(),
             "published_items": period.published_items, "used_items": period.used_items,
             "share_used": period.share_used} for entry in found.departments for period in entry.periods]  # fmt: skip
    return to_csv(rows, HISTORY)
