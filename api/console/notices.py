"""A notification as the console says it: in the page's language, from its kind and detail. The stored message is
Chinese then English (e-mail and webhooks carry both, for a department's shared mailbox); the console says it again
from the same facts, with dates and numbers in the language's format. A kind it does not know shows the stored line
of the page's language."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from api.console import i18n
from api.console.i18n import marked as _
from api.console.lookups import item_titles
from api.console.web import Page
from catalog.notifications.service import NotificationRead

MESSAGES: dict[str, str | dict[str, str]] = {
    "subscription_awaits_approval": {
        "requested": _(
            "%(consumer)s asks to subscribe to %(fields)s field(s) of %(item)s: subscription %(id)s awaits "
            "the provider's approval."
        ),
        "provider_approved": _(
            "%(consumer)s asks to subscribe to %(fields)s field(s) of %(item)s: subscription "
            "%(id)s awaits a data officer's approval."
        ),
    },
    "subscription_decided": {
        "approved": _("Your department's subscription %(id)s to %(item)s was approved at level %(level)s."),
        "rejected": _("Your department's subscription %(id)s to %(item)s was rejected."),
        "revoked": _("Your department's subscription %(id)s to %(item)s was revoked."),
    },
    "subscription_expiring": _(
        "Your department's subscription %(id)s to %(item)s expires on %(ends)s; renew it before then to go on reading."
    ),
    "renewal_awaits_approval": {
        "requested": _(
            "%(consumer)s asks to renew subscription %(id)s to %(item)s for %(days)s day(s): it awaits the "
            "provider's approval; the data keeps flowing until the old end meanwhile."
        ),
        "provider_approved": _(
            "%(consumer)s asks to renew subscription %(id)s to %(item)s for %(days)s day(s): it awaits a data "
            "officer's approval; the data keeps flowing until the old end meanwhile."
        ),
    },
    "renewal_decided": {
        "renewed": _("Your department's subscription %(id)s to %(item)s was renewed until %(ends)s."),
        "rejected": _(
            "The renewal of your department's subscription %(id)s to %(item)s was turned down; it still ends on "
            "%(ends)s."
        ),
    },
    "subscription_expired": _(
        "Your department's subscription %(id)s to %(item)s has expired; request a new one to go on reading."
    ),
    "classification_raised": _(
        "Field(s) %(fields)s of %(item)s are now classified above subscription %(id)s's "
        "approved level %(level)s: they are masked from now on. The consumer may ask for "
        "re-approval."
    ),
    "batch_quarantined": _(
        "Batch %(batch)s of %(item)s was quarantined: %(rows)s row(s) read, %(reasons)s "
        "reason(s). The current version stays; see the quality report, then release or discard "
        "it."
    ),
    "item_late": {
        "late": _("%(item)s is late: an export was due by %(due)s; last received: %(received)s."),
        "overdue": _("%(item)s is overdue: an export was due by %(due)s; last received: %(received)s."),
        "never_received": _("%(item)s has never received an export: one was due by %(due)s."),
    },
    "version_published": _("Version %(version)s of %(item)s, which your department subscribes to, is published."),
    "delivery_failed": _(
        "Version %(version)s of %(item)s could not be delivered to %(consumer)s's target %(target)s (delivery "
        "%(delivery)s); the next run tries again."
    ),
    "detection_digest": _(
        "On %(day)s detection proposed %(proposals)s new classification(s) in %(items)s item(s): "
        "%(named)s. See the review queue."
    ),
}
DIGEST_NAMED = 20  # as many items as the stored digest names


def said(page: Page, notices: list[NotificationRead]) -> dict[int, str]:
    """Each notification's text in the page's language, by notification id."""
    titles = item_titles(page, {notice.item_code for notice in notices if notice.item_code})
    return {notice.id: _said(page, notice, titles) for notice in notices}


def _said(page: Page, notice: NotificationRead, titles: dict[str, str]) -> str:
    said_as = MESSAGES.get(notice.kind)
    message = said_as.get(_variant(notice)) if isinstance(said_as, dict) else said_as
    if message is None:
        return _stored_line(page, notice.message)
    try:
        return page.t(message, **_values(page, notice, titles))
    except (AttributeError, KeyError, TypeError, ValueError):  # a detail written before its kind had these facts
        return _stored_line(page, notice.message)


def _variant(notice: NotificationRead) -> str:
    detail = notice.detail
    return str(detail.get("status") or detail.get("decision") or "")


def _values(page: Page, notice: NotificationRead, titles: dict[str, str]) -> dict[str, Any]:
    detail = notice.detail
    code = notice.item_code or ""
    values: dict[str, Any] = {"id": notice.subscription_id, "item": _item(page, code, titles)}
    if notice.kind == "subscription_awaits_approval":
        values |= {"consumer": detail["consumer"], "fields": _number(page, detail["fields"])}
    elif notice.kind == "subscription_decided":
        values["level"] = detail.get("approved_level")
    elif notice.kind in ("subscription_expiring", "renewal_decided"):
        values["ends"] = _when(page, _moment(detail["expires_at"]))
    elif notice.kind == "renewal_awaits_approval":
        values |= {"consumer": detail["consumer"], "days": _number(page, detail["days"])}
    elif notice.kind == "classification_raised":
        values |= {"fields": "、".join(detail["fields"]), "level": detail["approved_level"]}
    elif notice.kind == "batch_quarantined":
        values |= {"batch": detail["batch_id"], "rows": _number(page, detail["rows_read"]),
                   "reasons": _number(page, detail["reasons"])}  # fmt: skip
    elif notice.kind == "item_late":
        received = _moment(detail.get("last_received_at"))
        values |= {"due": _when(page, _moment(detail.get("due_at"))),
                   "received": _when(page, received) if received else page.t("never")}  # fmt: skip
    elif notice.kind == "version_published":
        values["version"] = detail["version"]
    elif notice.kind == "delivery_failed":
        values |= {key: detail[key] for key in ("version", "consumer", "target", "delivery")}
    elif notice.kind == "detection_digest":
        counts = list(detail["items"].items())
        named = ", ".join(f"{item} ({_number(page, count)})" for item, count in counts[:DIGEST_NAMED])
        more = f" …+{len(counts) - DIGEST_NAMED}" if len(counts) > DIGEST_NAMED else ""
        values |= {"day": _day(page, date.fromisoformat(detail["day"])), "items": _number(page, len(counts)),
                   "proposals": _number(page, detail["proposals"]), "named": named + more}  # fmt: skip
    return values


def _item(page: Page, code: str, titles: dict[str, str]) -> str:
    if code not in titles:
        return code
    return f"{titles[code]}（{code}）" if page.language.startswith("zh") else f"{titles[code]} ({code})"


def _number(page: Page, value: int) -> str:
    return i18n.number(page.language, value)


def _when(page: Page, moment: datetime | None) -> str:
    return i18n.when(page.language, moment)


def _day(page: Page, day: date) -> str:
    return i18n.day(page.language, day)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _stored_line(page: Page, message: str) -> str:
    """The stored message's line in the page's language (Chinese first, then English), or all of it."""
    lines = message.split("\n")
    if len(lines) == 2:
        return lines[0] if page.language.startswith("zh") else lines[1]
    return message
