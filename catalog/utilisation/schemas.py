"""The utilisation figures as the API serves them and ``datashare usage --json`` prints them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

REQUEST_OUTCOMES = ("pending", "active", "rejected", "revoked", "expired")


class Uses(BaseModel):
    reads: int = Field(0, description="Allowed data reads (pages, downloads, previews).")
    rows_read: int = Field(0, description="Rows those reads returned.")
    verifications: int = Field(0, description="Allowed verification look-up requests.")
    deliveries: int = Field(0, description="Pushed deliveries done.")
    rows_delivered: int = Field(0, description="Rows those deliveries carried.")

    @property
    def total(self) -> int:
        return self.reads + self.verifications + self.deliveries

    def add(self, other: Uses) -> None:
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class PerItem(BaseModel):
    """Uses in the window divided by the published items (0 without any)."""

    reads: float
    rows: float = Field(description="Rows read and delivered.")
    deliveries: float
    verifications: float


class Requests(BaseModel):
    made: int = Field(description="Subscription requests made in the window.")
    outcomes: dict[str, int] = Field(
        description="Those requests by where they stand now: pending (requested, provider_approved), active, "
        "rejected, revoked, expired (an active subscription past its end counts as expired)."
    )
    became_active: int = Field(description="Those of them that became active (whatever became of them since).")
    median_hours_to_active: float | None = Field(description="The median time from request to active, in hours.")


class ProviderFigures(BaseModel):
    """A department's items (or every department's, for the platform) as the provider sees them."""

    published_items: int
    subscribed_items: int = Field(description="Published items with at least one active subscription now.")
    share_subscribed: float | None = Field(description="subscribed_items / published_items (null without items).")
    used_items: int = Field(description="Published items read, verified against or delivered in the window.")
    share_used: float | None = Field(description="used_items / published_items (null without items).")
    uses: Uses
    per_item: PerItem
    requests: Requests = Field(description="Requests for these items.")


class ConsumerFigures(BaseModel):
    """What a department's people and systems used of other departments' (and its own) items."""

    active_subscriptions: int
    items_used: int = Field(description="Items (published or not) it used in the window.")
    uses: Uses
    requests: Requests = Field(description="Requests it made.")


class ConsumerUse(BaseModel):
    department: str | None = Field(description="The consumer department; null: anonymous reads of open data.")
    uses: Uses


class ItemUse(BaseModel):
    item: str
    title: str
    department: str = Field(description="The provider.")
    uses: Uses
    consumers: list[ConsumerUse] = Field(
        description="The departments that used it in the window, most uses first: only those whose subscriptions "
        "the caller may know of (as GET /subscriptions decides)."
    )


class DepartmentFigures(BaseModel):
    department: str
    name: str
    as_provider: ProviderFigures
    as_consumer: ConsumerFigures


class Window(BaseModel):
    as_of: datetime = Field(description="When the figures were computed: every use committed before is in them.")
    days: int
    since: date = Field(description="The window's first UTC day; it ends with as_of's day.")


class PlatformUtilisation(Window):
    platform: ProviderFigures
    departments: list[DepartmentFigures]
    top_items: list[ItemUse] = Field(description="The most used items in the window, most uses first.")


class DepartmentUtilisation(Window):
    figures: DepartmentFigures
    top_items: list[ItemUse] = Field(description="Its most used items (as provider), most uses first.")
    top_used: list[ItemUse] = Field(description="The items it used most (as consumer), most uses first.")
    items: list[ItemUse] = Field(description="Every published item of the department, by code.")


class Period(BaseModel):
    month: date = Field(description="The month's first day.")
    published_items: int = Field(description="The department's items published now that existed by the month's end.")
    used_items: int = Field(description="Those of them used in the month.")
    share_used: float | None


class DepartmentHistory(BaseModel):
    department: str
    name: str
    periods: list[Period]


class UtilisationHistory(BaseModel):
    as_of: datetime
    months: int
    departments: list[DepartmentHistory]
