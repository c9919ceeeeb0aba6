"""Classification reports on both backends: fields per level per department, fields never reviewed, open
proposals with their evidence, decisions per officer per day; and their CSV."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.classification import reports, review
from catalog.classification.detection import profile_field
from catalog.classification.models import FieldReview
from catalog.classification.repository import load_scheme
from catalog.classification.types import SemanticType
from catalog.db import utcnow
from catalog.errors import DomainError
from catalog.items.models import CatalogItem
from tests.catalog.helpers import OFFICER, approve_every_field, demo_file, import_demo_unreviewed

POPULATION = "PSGA-RK-0001"
COMMUNITY = "所属社区"  # code_list at level 2 in the demo
STEWARD = Principal("user:psga-steward", "psga")
OTHER_OFFICER = Principal("user:officer-wang", "sjj")


def demo_fields() -> list[tuple[str, str, str, int]]:
    """(department, item, field, level) of every field the demo declares."""
    return [
        (item.department, item.code, field.name, field.level) for item in demo_file().items for field in item.fields
    ]


def phones(count: int) -> list[str]:
    rng = random.Random(5)
    return ["1" + rng.choice("3456789") + "".join(rng.choices("0123456789", k=9)) for _ in range(count)]


def detect_phones_in_community(session: Session) -> None:
    """As ingestion does: the community field's values look like mobile numbers."""
    item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == POPULATION))
    assert item_id is not None
    profile = profile_field(phones(400), SemanticType.CODE_LIST, 2, load_scheme(session))
    assert review.record_findings(session, item_id, {COMMUNITY: profile}, batch_id=None) == 1


def test_fields_per_level_per_department(session: Session) -> None:
    import_demo_unreviewed(session)
    declared = Counter((department, level) for department, _, _, level in demo_fields())

    rows = reports.build(session, "levels")

    assert rows == [
        {"department": department, "level": level, "fields": count, "approved": 0, "pending": count}
        for (department, level), count in sorted(declared.items())
    ]
    approve_every_field(session, POPULATION)
    assert reports.build(session, "levels", department="psga") == [
        {"department": "psga", "level": 1, "fields": 1, "approved": 1, "pending": 0},
        {"department": "psga", "level": 2, "fields": 2, "approved": 2, "pending": 0},
        {"department": "psga", "level": 3, "fields": 5, "approved": 5, "pending": 0},
    ]
    # A steward's proposal makes the field pending again; the other departments are unchanged.
    review.propose(session, review.ProposalCreate(item=POPULATION, field=COMMUNITY, level=3, reason="可识别"), STEWARD)
    assert reports.build(session, "levels", department="psga")[1] == {
        "department": "psga", "level": 2, "fields": 2, "approved": 1, "pending": 1,
    }  # fmt: skip
    others = [row for row in reports.build(session, "levels") if row["department"] != "psga"]
    assert sum(row["fields"] for row in others) == sum(row["pending"] for row in others) == len(demo_fields()) - 8


def test_fields_never_reviewed(session: Session) -> None:
    import_demo_unreviewed(session)
    everything = reports.build(session, "unreviewed")
    assert len(everything) == len(demo_fields())
    assert everything[0] == {
        "department": "psga", "item": POPULATION, "field": "公民身份号码", "level": 3, "semantic_type": "resident_id",
        "item_status": "draft",
    }  # fmt: skip
    assert [row["field"] for row in everything if row["item"] == POPULATION] == [
        "公民身份号码", "姓名", "性别", "出生日期", "联系电话", "户籍地址", "所属社区", "更新时间",
    ]  # fmt: skip

    approve_every_field(session, POPULATION)
    # Reviewed once is reviewed: a new proposal makes the field pending, not unreviewed.
    review.propose(session, review.ProposalCreate(item=POPULATION, field=COMMUNITY, level=3, reason="可识别"), STEWARD)

    assert reports.build(session, "unreviewed", department="psga") == []
    assert len(reports.build(session, "unreviewed")) == len(demo_fields()) - 8
    assert {row["department"] for row in reports.build(session, "unreviewed", department="scjg")} == {"scjg"}


def test_open_proposals_with_detection_evidence(session: Session) -> None:
    import_demo_unreviewed(session)
    assert reports.build(session, "proposals") == []
    review.propose(session, review.ProposalCreate(item=POPULATION, field="性别", level=3, reason="与身份号码关联"),
                   STEWARD)  # fmt: skip
    detect_phones_in_community(session)

    rows = reports.build(session, "proposals", department="psga")

    assert [(row["field"], row["source"], row["proposed_level"], row["proposed_semantic_type"]) for row in rows] == [
        ("性别", "steward", 3, "code_list"),
        (COMMUNITY, "detection", 3, "phone"),
    ]
    steward, detected = rows
    assert steward["department"] == "psga" and steward["item"] == POPULATION
    assert (steward["level"], steward["semantic_type"], steward["reason"], steward["created_by"]) == (
        2, "code_list", "与身份号码关联", "user:psga-steward",
    )  # fmt: skip
    assert steward["detected_share"] is None and steward["detected_examples"] == []
    assert detected["detected_share"] == 1.0
    assert len(detected["detected_examples"]) == 3
    assert all("****" in example for example in detected["detected_examples"])  # masked, never the numbers
    assert detected["created_at"].endswith("Z") and detected["created_by"] == "detection"
    assert tuple(steward) == reports.COLUMNS["proposals"]
    assert reports.build(session, "proposals", department="zsj") == []

    # Deciding the fields closes their proposals.
    decisions = [
        review.FieldDecision(item=POPULATION, field="性别", reason="不可单独识别"),
        review.FieldDecision(
            item=POPULATION, field=COMMUNITY, level=3, semantic_type=SemanticType.PHONE, reason="手机号"
        ),
    ]
    review.decide(session, decisions, OFFICER)
    assert reports.build(session, "proposals") == []


def test_decisions_per_officer_per_day(session: Session) -> None:
    import_demo_unreviewed(session)
    approve_every_field(session, "SCJG-FR-0001")  # 7 fields as declared
    review.decide(session, [
        review.FieldDecision(item=POPULATION, field="性别", level=3, reason="与身份号码关联"),  # raised
        review.FieldDecision(item=POPULATION, field="更新时间", semantic_type=SemanticType.IDENTIFIER, reason="x"),
        review.FieldDecision(item=POPULATION, field="所属社区", level=1, reason="公开的社区名"),  # lowered
        review.FieldDecision(item=POPULATION, field="姓名"),
    ], OTHER_OFFICER)  # fmt: skip
    # Yesterday's decisions (moved back a day) are counted on their own day.
    yesterday = utcnow() - timedelta(days=1)
    review.decide(session, [review.FieldDecision(item=POPULATION, field="联系电话")], OFFICER)
    session.execute(update(FieldReview).where(FieldReview.field_name == "联系电话").values(decided_at=yesterday))
    today, before = utcnow().date().isoformat(), yesterday.date().isoformat()

    assert reports.build(session, "decisions") == [
        {"officer": "user:officer-li", "day": before, "decisions": 1, "changes": 0, "raised": 0},
        {"officer": "user:officer-li", "day": today, "decisions": 7, "changes": 0, "raised": 0},
        {"officer": "user:officer-wang", "day": today, "decisions": 4, "changes": 3, "raised": 1},
    ]
    assert reports.build(session, "decisions", department="scjg") == [
        {"officer": "user:officer-li", "day": today, "decisions": 7, "changes": 0, "raised": 0},
    ]
    assert reports.build(session, "decisions", department="zsj") == []


def test_unknown_reports_and_departments_are_domain_errors(session: Session) -> None:
    import_demo_unreviewed(session)
    with pytest.raises(reports.UnknownReport) as unknown:
        reports.build(session, "everything")
    assert unknown.value.code == "report_not_found"
    assert "levels, unreviewed, proposals, decisions" in unknown.value.message
    with pytest.raises(DomainError) as department:
        reports.build(session, "levels", department="nope")
    assert department.value.code == "department_not_found"


def test_csv_has_the_report_columns_even_without_rows(session: Session) -> None:
    import_demo_unreviewed(session)
    for name in reports.REPORTS:
        rows = reports.build(session, name, department="mljd")  # a department without items
        assert rows == []
        assert reports.to_csv(rows) == ",".join(reports.COLUMNS[name]) + "\r\n"

    detect_phones_in_community(session)
    parsed = list(csv.DictReader(io.StringIO(reports.to_csv(reports.build(session, "proposals")))))
    assert len(parsed) == 1 and list(parsed[0]) == list(reports.COLUMNS["proposals"])
    assert parsed[0]["detected_share"] == "1.0" and parsed[0]["reason"] == ""
    assert len(parsed[0]["detected_examples"].split("; ")) == 3


def test_csv_of_plain_rows_and_formula_cells() -> None:
    assert reports.to_csv([]) == ""
    assert reports.to_csv([], columns=["a", "b"]) == "a,b\r\n"
    text = reports.to_csv([{"a": "=1+1", "b": None, "c": ["x", "y"], "d": -3, "e": True}])
    assert text == "a,b,c,d,e\r\n'=1+1,,x; y,-3,true\r\n"
