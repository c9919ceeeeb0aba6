"""What the console tells a person when the platform refuses something: a sentence in their language for each kind
of refusal (the service's own wording, in English, stays in the audit trail and the API)."""

from __future__ import annotations

from pydantic import ValidationError

from api.console.i18n import marked as _
from api.console.web import Page
from api.problems import ApiProblem
from catalog.errors import DomainError

BY_CODE = {
    "subscription_exists": _("Your department already has an open subscription or request for this item."),
    "item_not_shared": _("This item is not shared."),
    "invalid_subscription_request": _("The request is not valid: choose fields of the item and a shorter period."),
    "illegal_subscription_change": _("This subscription can no longer be changed that way."),
    "subscription_not_found": _("There is no such subscription, or it is not yours to see."),
    "no_active_subscription": _("Your department has no active subscription to this item."),
    "invalid_verification": _(
        "Each record needs the item's key and may give only the fields your subscription grants."
    ),
    "invalid_filter": _("A value does not fit its field's type."),
    "invalid_transition": _("This is not possible in the current state."),
    "not_found": _("There is no such thing, or it is not yours to see."),
    "forbidden": _("Your roles do not allow this."),
}
BY_STATUS = {
    401: _("Sign in to do this."),
    403: _("Your roles do not allow this."),
    429: _("Too many requests. Wait a minute and try again."),
}
FALLBACK = _("This could not be done.")
INVALID = _("Some values are missing or not valid: check the marked fields.")


def refusal(page: Page, error: Exception) -> str:
    if isinstance(error, ValidationError):
        return page.t(INVALID)
    if isinstance(error, DomainError):
        return page.t(BY_CODE.get(error.code, FALLBACK))
    if isinstance(error, ApiProblem):
        return page.t(BY_STATUS.get(error.status, FALLBACK))
    raise error


REFUSALS = (ValidationError, DomainError, ApiProblem)
