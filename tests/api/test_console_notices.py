"""Every kind of notification and every recorded reason of a run said in the console's two languages, from
what the catalog records; a kind or a reason the console does not know is shown as stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from api.console import i18n, reasons, terms
from api.console.notices import MESSAGES, said
from catalog.ingest.reasons import REASONS, reason
from catalog.notifications.service import NotificationRead

STORED = "存储的中文消息。\nThe stored English message."
DETAILS: dict[str, tuple[dict[str, Any], str, str]] = {
    "subscription_awaits_approval": ({"consumer": "zsj", "fields": 3, "status": "provider_approved"},
                                     "待数据官审批", "awaits a data officer's approval"),
    "subscription_decided": ({"decision": "approved", "approved_level": 2}, "已获批准，批准级别为 2 级",
                             "was approved at level 2"),
    "subscription_expiring": ({"expires_at": "2026-12-08T04:00:00+00:00"}, "将于 2026年12月8日 12:00:00 到期",
                              "expires on Dec 8, 2026, 12:00:00"),
    "subscription_expired": ({}, "订阅 7 已到期", "subscription 7 to"),
    "classification_raised": ({"fields": ["姓名", "住址"], "levels": {"姓名": 3, "住址": 3}, "approved_level": 2},
                              "字段 姓名、住址 的分级已高于订阅 7 获批的级别 2", "Field(s) 姓名、住址 of"),
    "batch_quarantined": ({"batch_id": 12, "reasons": 2, "rows_read": 12000}, "读取 12,000 行，2 项原因",
                          "Batch 12 of"),
    "item_late": ({"status": "never_received", "due_at": "2026-11-30T16:00:00+00:00", "last_received_at": None},
                  "从未收到数据：应于 2026年12月1日 00:00:00 前收到", "has never received an export"),
    "version_published": ({"version": 4}, "发布了第 4 版", "Version 4 of"),
    "delivery_failed": ({"version": 2, "consumer": "zsj", "target": "street-db", "delivery": 9},
                        "第 2 版未能推送到 zsj 的目标 street-db", "could not be delivered to zsj's target street-db"),
    "renewal_awaits_approval": ({"consumer": "zsj", "days": 30, "status": "requested"},
                                "续期 30 天，待提供部门审批", "for 30 day(s): it awaits the provider's approval"),
    "renewal_decided": ({"decision": "renewed", "expires_at": "2027-01-08T04:00:00+00:00"},
                        "已续期，新的到期时间为 2027年1月8日 12:00:00", "was renewed until Jan 8, 2027"),
    "detection_digest": ({"day": "2026-11-30", "proposals": 5, "items": {"PSGA-RK-0001": 3, "ZSJ-MS-0001": 2}},
                         "2026年11月30日 自动检测提出 5 条新的分级建议，涉及 2 个数据项：PSGA-RK-0001 (3), "
                         "ZSJ-MS-0001 (2)",
                         "On Nov 30, 2026 detection proposed 5 new classification(s) in 2 item(s)"),
}  # fmt: skip


class Titles:
    """A session that knows one item's title."""

    def execute(self, _statement: Any) -> list[tuple[str, str]]:
        return [("PSGA-RK-0001", "人口基本信息")]


def page(language: str) -> Any:
    return SimpleNamespace(language=language, session=Titles(),
                           t=lambda message, **values: i18n.gettext(language, message, **values))  # fmt: skip


def notice(kind: str, detail: dict[str, Any]) -> NotificationRead:
    return NotificationRead(id=1, department="zsj", audience="department", kind=kind, item_code="PSGA-RK-0001",
                            subscription_id=7, message=STORED, detail=detail, read_at=None,
                            created_at=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip


def test_every_kind_the_console_says_is_covered_here() -> None:
    assert set(DETAILS) == set(MESSAGES)


@pytest.mark.parametrize("kind", sorted(DETAILS))
def test_a_notification_is_said_in_the_page_language(kind: str) -> None:
    detail, chinese, english = DETAILS[kind]
    in_chinese = said(page("zh_CN"), [notice(kind, detail)])[1]
    in_english = said(page("en"), [notice(kind, detail)])[1]
    assert chinese in in_chinese and "存储的" not in in_chinese, in_chinese
    assert english in in_english and "stored" not in in_english, in_english
    assert "人口基本信息" in in_chinese + in_english or kind == "detection_digest"


def test_an_unknown_kind_or_detail_shows_the_stored_line_of_the_language() -> None:
    assert said(page("zh_CN"), [notice("something_new", {})])[1] == "存储的中文消息。"
    assert said(page("en"), [notice("version_published", {})])[1] == "The stored English message."


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_every_recorded_reason_is_said_in_chinese_and_stays_itself_in_english(kind: str) -> None:
    parts = {"field": "公民身份号码", "rule": "resident ID check digit", "error": "ValueError", "observed": "100",
             "expected": reason("share_of_previous", minimum=260, share="50", previous=520), "failed": 3,
             "rows": "1, 2, 7", "minimum": 260, "share": "50", "previous": 520, "what": reason("stopped"),
             "batch": 4, "outcome": "published"}  # fmt: skip
    recorded = reason(kind, **parts)
    in_chinese = reasons.said("zh_CN", recorded)
    assert reasons.said("en", recorded) == recorded
    assert not re.search(r"[a-z]{3,}", in_chinese.replace("ValueError", "")), in_chinese  # no English words left


def test_a_reason_that_is_no_phrase_and_a_rule_unknown_are_shown_as_recorded() -> None:
    assert reasons.said("zh_CN", "the export is not UTF-8") == "the export is not UTF-8"
    assert (terms.rule("zh_CN", "type date"), terms.rule("zh_CN", "new rule")) == ("类型：日期", "new rule")
