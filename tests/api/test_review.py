"""Classification review over HTTP on both backends: the queue (filters; stewards see their own department),
officers' batch decisions and their reason rules, stewards' proposals, history and audit, the reports in JSON and
CSV, notifications, re-approval of subscriptions, and the propagation of a raised level to a consumer's very
next page.

The module shares one database: each test decides fields no other test depends on, and starts without open
subscriptions."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from catalog.audit.models import AuditEvent
from catalog.classification.models import FieldReview
from catalog.classification.reports import COLUMNS
from catalog.db import make_engine, session_scope
from catalog.ingest.service import ingest_export
from catalog.items.models import ItemField
from tests.api.conftest import POPULATION_REQUEST, revoke_every_subscription, status_of
from tests.catalog.helpers import demo_raw

Headers = dict[str, dict[str, str]]
POPULATION = POPULATION_REQUEST
COMMUNITY = "所属社区"  # level 2 in the demo: read unmasked by a subscription approved at level 2


def problem(response: Any, expected: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = status_of(response, expected)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["code"] == code, body
    return body


def audit_events(database: str, action: str, **where: Any) -> list[AuditEvent]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        statement = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        for name, value in where.items():
            statement = statement.where(getattr(AuditEvent, name) == value)
        events = list(session.scalars(statement))
        session.expunge_all()
    engine.dispose()
    return events


@pytest.fixture(scope="module")
def database(database: str) -> str:
    """The demo, every field awaiting an officer's review again (as after a change of the classification scheme),
    without the decisions of its import: still served at the levels approved then."""
    engine = make_engine(database)
    with session_scope(engine) as session:
        session.execute(update(ItemField).values(review_status="pending"))
        session.execute(delete(FieldReview))
    engine.dispose()
    return database


@pytest.fixture(autouse=True)
def no_open_subscriptions(database: str) -> None:
    revoke_every_subscription(database)


@pytest.fixture(scope="module")
def complaints(database: str, samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The complaints export ingested: its under-declared phone field (level 1, no semantic type) gets a
    detection proposal (phone, level 3)."""
    engine = make_engine(database)
    name = "zsj_complaints_20261120.json"
    with session_scope(engine) as session:
        outcome = ingest_export(session, "ZSJ-MS-0001", (samples_dir / name).read_bytes(), name,
                                raw_dir=tmp_path_factory.mktemp("raw"), trigger="test")  # fmt: skip
        assert outcome.outcome == "published"
    engine.dispose()


def queue(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/review/queue", params={"limit": 1000, **params}, headers=headers)
    body: dict[str, Any] = status_of(response, 200)
    assert body["total"] >= len(body["entries"])
    return body


def fields_of(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["item"], entry["field"]) for entry in page["entries"]]


def decide(client: TestClient, as_: Headers, *decisions: dict[str, Any]) -> Any:
    return status_of(client.post("/review/decisions", json={"decisions": list(decisions)}, headers=as_["officer"]), 200)


def refused(client: TestClient, as_: Headers, decisions: list[dict[str, Any]], status: int, code: str) -> str:
    """An officer's batch refused: the problem's detail."""
    response = client.post("/review/decisions", json={"decisions": decisions}, headers=as_["officer"])
    return str(problem(response, status, code)["detail"])


# --- the queue -------------------------------------------------------------------------------------------------


def test_the_queue_officers_see_every_department_and_stewards_their_own(
    client: TestClient, as_: Headers, database: str, published: list[str], complaints: None
) -> None:
    everything = queue(client, as_["officer"])
    assert {"psga", "zsj"} <= {entry["department"] for entry in everything["entries"]}
    assert ("PSGA-RK-0001", "公民身份号码") in fields_of(everything)
    waiting = [entry["waiting_since"] for entry in everything["entries"]]
    assert waiting == sorted(waiting)  # oldest first

    # the detection proposal of the under-declared phone field, with masked evidence
    found = queue(client, as_["officer"], finding="phone")
    assert fields_of(found) == [("ZSJ-MS-0001", "诉求人电话")] and found["total"] == 1
    entry = found["entries"][0]
    assert (entry["level"], entry["semantic_type"], entry["suggested_level"]) == (1, "none", 3)
    [proposal] = entry["proposals"]
    assert (proposal["source"], proposal["level"], proposal["semantic_type"]) == ("detection", 3, "phone")
    assert proposal["evidence"]["share"] > 0.9 and all("*" in example for example in proposal["evidence"]["examples"])
    assert fields_of(queue(client, as_["officer"], finding="any")) == [("ZSJ-MS-0001", "诉求人电话")]
    assert queue(client, as_["officer"], finding="email")["entries"] == []

    for params, check in (
        ({"department": "zsj"}, lambda e: e["department"] == "zsj"),
        ({"semantic_type": "person_name"}, lambda e: e["semantic_type"] == "person_name"),
        ({"level": 3}, lambda e: e["level"] == 3),
        ({"department": "psga", "level": 3, "semantic_type": "resident_id"}, lambda e: e["field"] == "公民身份号码"),
    ):
        page = queue(client, as_["officer"], **params)
        assert page["entries"] and all(check(entry) for entry in page["entries"]), params
    two = queue(client, as_["officer"], limit=2)
    assert len(two["entries"]) == 2 and two["total"] == everything["total"]
    assert queue(client, as_["officer"], limit=1, offset=1)["entries"] == two["entries"][1:]

    # a steward sees their own department's fields, whatever they ask for; another department is refused
    own = queue(client, as_["psga-steward"])
    assert own["entries"] and {entry["department"] for entry in own["entries"]} == {"psga"}
    assert own == queue(client, as_["psga-steward"], department="psga")
    problem(client.get("/review/queue", params={"department": "zsj"}, headers=as_["psga-steward"]), 403, "forbidden")
    denied = audit_events(database, "classification.read", principal="user:psga-steward", outcome="denied")
    assert denied and denied[-1].detail.get("on_behalf_of") == "zsj"
    problem(client.get("/review/queue", headers=as_["zsj-user"]), 403, "forbidden")
    problem(client.get("/review/queue"), 401, "unauthenticated")
    problem(client.get("/review/queue", params={"limit": 1001}, headers=as_["officer"]), 422, "invalid_request")
    problem(client.get("/review/queue", params={"finding": "nothing"}, headers=as_["officer"]), 422, "invalid_request")

    # the queue by item: how many fields of each wait, how many of those with a proposal
    items = status_of(client.get("/review/items", headers=as_["officer"]), 200)
    by_code = {entry["item"]: entry for entry in items["entries"]}
    assert by_code["ZSJ-MS-0001"]["with_proposals"] == 1 and items["total"] == len(by_code)
    assert sum(entry["pending_fields"] for entry in items["entries"]) == everything["total"]
    mine = status_of(client.get("/review/items", headers=as_["psga-steward"]), 200)
    assert [entry["item"] for entry in mine["entries"]] == ["PSGA-RK-0001"]
    problem(client.get("/review/items", params={"department": "zsj"}, headers=as_["psga-steward"]), 403, "forbidden")

    # the officer accepts the detection's proposal: the field leaves the queue, the history keeps the suggestion
    report = decide(client, as_, {"item": "ZSJ-MS-0001", "field": "诉求人电话", "level": 3, "semantic_type": "phone",
                                  "reason": "样本中为手机号码，按个人信息定为三级"})  # fmt: skip
    assert (report["decided"], report["changed"]) == (1, 1)
    assert report["raised"] == [{"item": "ZSJ-MS-0001", "field": "诉求人电话", "from_level": 1, "to_level": 3}]
    assert queue(client, as_["officer"], finding="any")["entries"] == []
    assert ("ZSJ-MS-0001", "诉求人电话") not in fields_of(queue(client, as_["officer"]))
    [decision] = [row for row in status_of(client.get("/items/ZSJ-MS-0001/review-history", headers=as_["officer"]), 200)
                  if row["field"] == "诉求人电话"]  # fmt: skip
    assert (decision["from_level"], decision["to_level"], decision["suggested_level"]) == (1, 3, 3)
    assert (decision["from_semantic_type"], decision["to_semantic_type"]) == ("none", "phone")


# --- decisions -------------------------------------------------------------------------------------------------


def test_batch_decisions_all_or_none_with_reasons_for_changes(client: TestClient, as_: Headers, database: str) -> None:
    item = "SCJG-FR-0001"
    approve = {"item": item, "field": "企业名称"}
    change = {"item": item, "field": "成立日期", "level": 2}
    body = {"decisions": [approve, change]}
    for who in ("psga-steward", "zsj-steward", "zsj-user"):
        problem(client.post("/review/decisions", json=body, headers=as_[who]), 403, "forbidden")
    problem(client.post("/review/decisions", json=body), 401, "unauthenticated")
    assert audit_events(database, "classification.decide", principal="user:zsj-steward", outcome="denied")

    # a change needs a reason; nothing of the batch is applied
    detail = refused(client, as_, [approve, change], 422, "invalid_review_decision")
    assert "成立日期" in detail and "a change needs a reason" in detail
    refused(client, as_, [{**change, "reason": "   "}], 422, "invalid_review_decision")
    assert status_of(client.get(f"/items/{item}/review-history", headers=as_["officer"]), 200) == []
    denied = audit_events(database, "classification.decide", principal="user:officer", outcome="denied")
    assert denied[-1].detail["reason"] == "invalid_review_decision"

    # the scheme's rules: the level exists, and a semantic type's minimum holds
    for wrong, words in (
        ({"item": "PSGA-RK-0001", "field": "公民身份号码", "level": 2, "reason": "试试"}, "at least level 3"),
        ({**change, "level": 9, "reason": "试试"}, "not a level"),
    ):
        assert words in refused(client, as_, [wrong], 422, "invalid_review_decision")
    missing = [approve, {"item": item, "field": "没有的字段"}]
    assert "没有的字段" in refused(client, as_, missing, 404, "field_not_found")
    refused(client, as_, [{"item": "NOPE-0001", "field": "x"}], 404, "field_not_found")
    refused(client, as_, [approve, approve], 422, "invalid_review_decision")
    for invalid in ([], [{**approve, "extra": 1}], [{**approve, "level": 0}], [{**approve, "reason": "a\x00"}],
                    [{**approve, "item": "x\x00"}]):  # fmt: skip
        refused(client, as_, invalid, 422, "invalid_request")

    # 20,000 decisions with reasons fit the route's body cap (refused here only as one field twice); more do not
    many = [{**approve, "level": 1, "reason": "按照《数据分类分级指南》复核后维持一级，不涉及个人信息"}] * 20_000
    assert len(json.dumps({"decisions": many})) > 2 << 20  # over the API's usual 1 MB cap
    assert "once per batch" in refused(client, as_, many, 422, "invalid_review_decision")
    too_many = client.post("/review/decisions", json={"decisions": [*many, approve]}, headers=as_["officer"])
    assert problem(too_many, 422, "invalid_request")["errors"][0]["type"] == "too_long"
    huge = [{**approve, "reason": "理" * 2000}] * 3000  # 18 MB
    problem(client.post("/review/decisions", json={"decisions": huge}, headers=as_["officer"]), 413,
            "request_too_large")  # fmt: skip

    # the batch, with reasons: every field approved, the history and the audit written, all at once
    retyped = {"item": item, "field": "经营状态", "semantic_type": "free_text", "reason": "含自由文本"}
    report = decide(client, as_, approve, {**change, "reason": "成立日期可推断企业经营信息"}, retyped)
    assert (report["decided"], report["changed"]) == (3, 2)
    assert (report["subscriptions_masked"], report["notifications"]) == (0, 0)
    assert report["raised"] == [{"item": item, "field": "成立日期", "from_level": 1, "to_level": 2}]
    history = status_of(client.get(f"/items/{item}/review-history", headers=as_["officer"]), 200)
    assert [(row["field"], row["from_level"], row["to_level"], row["decided_by"]) for row in history] == [
        ("企业名称", 1, 1, "user:officer"), ("成立日期", 1, 2, "user:officer"), ("经营状态", 1, 1, "user:officer")
    ]  # fmt: skip
    assert history[1]["reason"] == "成立日期可推断企业经营信息" and history[0]["reason"] is None
    assert (history[2]["from_semantic_type"], history[2]["to_semantic_type"]) == ("code_list", "free_text")
    audited = audit_events(database, "classification.decide", item_code=item, principal="user:officer", outcome="done")
    assert [(event.principal, event.detail["field"], event.detail["to_level"]) for event in audited] == [
        ("user:officer", "企业名称", 1), ("user:officer", "成立日期", 2), ("user:officer", "经营状态", 1)
    ]  # fmt: skip
    assert [event.detail["review_id"] for event in audited] == [row["id"] for row in history]
    assert status_of(client.get(f"/items/{item}", headers=as_["officer"]), 200)["fields"][3]["level"] == 2
    pending = fields_of(queue(client, as_["officer"], department="scjg"))
    assert not {(item, "企业名称"), (item, "成立日期"), (item, "经营状态")} & set(pending)


# --- proposals and history -------------------------------------------------------------------------------------


def test_a_stewards_proposal_then_an_officers_decision(client: TestClient, as_: Headers, database: str) -> None:
    proposal = {"item": "PSGA-RK-0001", "field": "性别", "level": 3, "reason": "与出生日期组合可识别个人"}
    problem(client.post("/review/proposals", json=proposal), 401, "unauthenticated")
    for who in ("zsj-steward", "zsj-user", "officer"):  # not the owning department's steward
        problem(client.post("/review/proposals", json=proposal, headers=as_[who]), 403, "forbidden")
    assert audit_events(database, "classification.propose", principal="user:zsj-steward", outcome="denied")
    problem(client.post("/review/proposals", json={**proposal, "item": "NOPE-0001"}, headers=as_["psga-steward"]),
            404, "item_not_found")  # fmt: skip
    problem(client.post("/review/proposals", json={**proposal, "field": "没有"}, headers=as_["psga-steward"]), 404,
            "field_not_found")  # fmt: skip
    problem(client.post("/review/proposals", json={**proposal, "reason": ""}, headers=as_["psga-steward"]), 422,
            "invalid_request")  # fmt: skip

    # another department's draft is not the caller's to know about: 404, for proposals and for its history
    draft = copy.deepcopy(next(item for item in demo_raw()["items"] if item["code"] == "ZSJ-MS-0001"))
    draft.update(code="ZSJ-MS-0099", title="草稿")
    draft.pop("status", None)
    status_of(client.post("/items", json=draft, headers=as_["zsj-steward"]), 201)
    on_draft = {**proposal, "item": "ZSJ-MS-0099", "field": "事件编号"}
    problem(client.post("/review/proposals", json=on_draft, headers=as_["psga-steward"]), 404, "item_not_found")
    problem(client.get("/items/ZSJ-MS-0099/review-history", headers=as_["psga-steward"]), 404, "item_not_found")
    assert status_of(client.post("/review/proposals", json=on_draft, headers=as_["zsj-steward"]), 201)["id"]

    created = status_of(client.post("/review/proposals", json=proposal, headers=as_["psga-steward"]), 201)
    [entry] = [e for e in queue(client, as_["psga-steward"])["entries"] if e["field"] == "性别"]
    assert entry["suggested_level"] == 3 and entry["level"] == 2
    assert [(p["id"], p["source"], p["created_by"]) for p in entry["proposals"]] == [
        (created["id"], "steward", "user:psga-steward")
    ]
    [event] = audit_events(database, "classification.propose", principal="user:psga-steward", outcome="done")
    assert (event.item_code, event.detail["field"], event.detail["proposal_id"]) == ("PSGA-RK-0001", "性别",
                                                                                      created["id"])  # fmt: skip

    # approving below the suggested level needs a reason
    keep = {"item": "PSGA-RK-0001", "field": "性别"}
    assert "suggested level 3" in refused(client, as_, [keep], 422, "invalid_review_decision")
    report = decide(client, as_, {**keep, "reason": "性别单独不能识别个人，维持二级"})
    assert (report["decided"], report["changed"], report["raised"]) == (1, 0, [])
    assert "性别" not in [e["field"] for e in queue(client, as_["psga-steward"])["entries"]]

    # the history: the officers and the owning department's stewards; others are refused
    for who in ("officer", "psga-steward"):
        rows = status_of(client.get("/items/PSGA-RK-0001/review-history", headers=as_[who]), 200)
        [row] = [row for row in rows if row["field"] == "性别"]
        assert (row["from_level"], row["to_level"], row["suggested_level"]) == (2, 2, 3)
        assert row["decided_by"] == "user:officer"
        assert row["reason"] == "性别单独不能识别个人，维持二级"
    for who in ("zsj-steward", "zsj-user"):
        problem(client.get("/items/PSGA-RK-0001/review-history", headers=as_[who]), 403, "forbidden")
    problem(client.get("/items/PSGA-RK-0001/review-history"), 401, "unauthenticated")
    problem(client.get("/items/NOPE-0001/review-history", headers=as_["officer"]), 404, "item_not_found")


# --- reports ---------------------------------------------------------------------------------------------------


def test_reports_in_json_and_csv_for_officers(client: TestClient, as_: Headers) -> None:
    decide(client, as_, {"item": "ZSJ-MS-0001", "field": "状态"})
    for name, columns in COLUMNS.items():
        body = status_of(client.get(f"/review/reports/{name}", headers=as_["officer"]), 200)
        assert (body["report"], body["department"]) == (name, None)
        assert all(list(row) == list(columns) for row in body["rows"]), name
        response = client.get(f"/review/reports/{name}", params={"format": "csv"}, headers=as_["officer"])
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"] == f'attachment; filename="classification-{name}.csv"'
        lines = list(csv.reader(io.StringIO(response.text)))
        assert lines[0] == list(columns) and len(lines) == len(body["rows"]) + 1, name

    levels = status_of(client.get("/review/reports/levels", params={"department": "zsj"}, headers=as_["officer"]),
                       200)  # fmt: skip
    assert levels["department"] == "zsj" and {row["department"] for row in levels["rows"]} == {"zsj"}
    assert sum(row["approved"] for row in levels["rows"]) >= 1
    decisions = status_of(client.get("/review/reports/decisions", headers=as_["officer"]), 200)["rows"]
    assert any(row["officer"] == "user:officer" and row["decisions"] >= 1 for row in decisions)
    unreviewed = status_of(client.get("/review/reports/unreviewed", params={"department": "zsj"},
                                      headers=as_["officer"]), 200)["rows"]  # fmt: skip
    assert ("ZSJ-MS-0001", "状态") not in [(row["item"], row["field"]) for row in unreviewed]
    assert ("ZSJ-MS-0001", "事件编号") in [(row["item"], row["field"]) for row in unreviewed]

    problem(client.get("/review/reports/levels", params={"department": "nope"}, headers=as_["officer"]), 404,
            "department_not_found")  # fmt: skip
    problem(client.get("/review/reports/nothing", headers=as_["officer"]), 422, "invalid_request")
    problem(client.get("/review/reports/levels", params={"format": "xml"}, headers=as_["officer"]), 422,
            "invalid_request")  # fmt: skip
    for who in ("psga-steward", "zsj-user"):
        problem(client.get("/review/reports/levels", headers=as_[who]), 403, "forbidden")
    problem(client.get("/review/reports/levels", params={"format": "csv"}), 401, "unauthenticated")


# --- notifications ---------------------------------------------------------------------------------------------


def test_notifications_are_the_callers_departments(client: TestClient, as_: Headers) -> None:
    problem(client.get("/notifications"), 401, "unauthenticated")
    officers = status_of(client.get("/notifications", headers=as_["officer"]), 200)  # the notices for data officers
    assert {notice["audience"] for notice in officers} <= {"data_officers"}
    assert isinstance(status_of(client.get("/notifications", headers=as_["wjj-user"]), 200), list)
    problem(client.post("/notifications/999999/read", headers=as_["zsj-user"]), 404, "notification_not_found")
    problem(client.post("/notifications/0/read", headers=as_["zsj-user"]), 422, "invalid_request")


# --- propagation and re-approval -------------------------------------------------------------------------------


def page(client: TestClient, as_: Headers, after: int = 0) -> dict[str, Any]:
    params = {"limit": 5, "after": after}
    body: dict[str, Any] = status_of(client.get("/items/PSGA-RK-0001/data", params=params, headers=as_["zsj-user"]),
                                     200)  # fmt: skip
    return body


def community_shown(body: dict[str, Any]) -> bool:
    """Whether the page shows the community unmasked (the demo's communities all end in 社区)."""
    values = [row[COMMUNITY] for row in body["rows"]]
    shown = all(value.endswith("社区") for value in values)
    assert shown is (COMMUNITY not in body["masked_fields"]), body
    return shown


def test_a_raised_level_masks_the_field_from_the_next_page_until_re_approval(
    client: TestClient, as_: Headers, database: str, published: list[str]
) -> None:
    # zsj's subscription, approved up to level 2: the community (level 2) comes unmasked
    created = status_of(client.post("/subscriptions", json=POPULATION, headers=as_["zsj-user"]), 201)
    path = f"/subscriptions/{created['id']}"
    status_of(client.post(f"{path}/approve", headers=as_["psga-steward"]), 200)
    active = status_of(client.post(f"{path}/approve", json={"level": 2}, headers=as_["officer"]), 200)
    assert (active["status"], active["approved_level"]) == ("active", 2)
    assert active["masked_fields"] == ["公民身份号码", "姓名"]
    first = page(client, as_)
    assert community_shown(first) and first["masked_fields"] == ["公民身份号码", "姓名"]
    before = {
        who: {n["id"] for n in status_of(client.get("/notifications", headers=as_[who]), 200)}
        for who in ("zsj-user", "psga-steward", "wjj-user")
    }

    # the officer raises the community to level 3 while zsj reads: its very next page has it masked
    raised = decide(client, as_, {"item": "PSGA-RK-0001", "field": COMMUNITY, "level": 3, "reason": "社区可定位到人"})
    assert (raised["subscriptions_masked"], raised["notifications"]) == (1, 2)
    following = page(client, as_, after=first["next_after"])
    assert following["rows"][0]["_row"] == first["next_after"] + 1
    assert not community_shown(following)
    assert following["masked_fields"] == ["公民身份号码", "姓名", COMMUNITY]
    subscription = status_of(client.get(path, headers=as_["zsj-user"]), 200)
    assert subscription["masked_fields"] == ["公民身份号码", "姓名", COMMUNITY] and subscription["approved_level"] == 2
    masked = audit_events(database, "subscription.masked", subscription_id=created["id"])
    assert [event.fields_masked for event in masked] == [[COMMUNITY]]
    reads = audit_events(database, "data.read", subscription_id=created["id"], principal="user:zsj-user")
    assert COMMUNITY in reads[-1].fields_masked and COMMUNITY not in reads[-2].fields_masked

    # both departments are notified, nobody else; each marks its own as read, not another's
    news = {}
    for who in ("zsj-user", "psga-steward", "wjj-user"):
        listed = status_of(client.get("/notifications", headers=as_[who]), 200)
        news[who] = [n for n in listed if n["id"] not in before[who]]
    assert news["wjj-user"] == []
    for who, department in (("zsj-user", "zsj"), ("psga-steward", "psga")):
        [notice] = news[who]
        assert (notice["department"], notice["kind"], notice["item_code"], notice["subscription_id"]) == (
            department, "classification_raised", "PSGA-RK-0001", created["id"])  # fmt: skip
        assert notice["detail"]["fields"] == [COMMUNITY] and notice["read_at"] is None
        assert COMMUNITY in notice["message"]
    zsj_notice, psga_notice = news["zsj-user"][0], news["psga-steward"][0]
    problem(client.post(f"/notifications/{psga_notice['id']}/read", headers=as_["zsj-user"]), 404,
            "notification_not_found")  # fmt: skip
    read = status_of(client.post(f"/notifications/{zsj_notice['id']}/read", headers=as_["zsj-steward"]), 200)
    assert read["read_at"] is not None
    unread = status_of(client.get("/notifications", params={"unread": True}, headers=as_["zsj-user"]), 200)
    assert zsj_notice["id"] not in [n["id"] for n in unread]
    assert psga_notice["id"] in [n["id"] for n in status_of(
        client.get("/notifications", params={"unread": True}, headers=as_["psga-steward"]), 200)]  # fmt: skip

    # lowering the level again unmasks nothing
    lowered = decide(client, as_, {"item": "PSGA-RK-0001", "field": COMMUNITY, "level": 2, "reason": "复核后恢复二级"})
    assert (lowered["raised"], lowered["subscriptions_masked"], lowered["notifications"]) == ([], 0, 0)
    assert not community_shown(page(client, as_, after=following["next_after"]))
    assert status_of(client.get(path, headers=as_["zsj-user"]), 200)["masked_fields"] == [
        "公民身份号码", "姓名", COMMUNITY]  # fmt: skip

    # re-approval: asked by the consumer, approved by the provider, then (level 3) by an officer
    problem(client.post(f"{path}/reapproval", headers=as_["psga-steward"]), 403, "forbidden")
    problem(client.post(f"{path}/reapproval", headers=as_["wjj-user"]), 404, "subscription_not_found")
    asked = status_of(client.post(f"{path}/reapproval", headers=as_["zsj-user"]), 200)
    assert (asked["reapproval_status"], asked["reapproval_level"]) == ("requested", 3)
    problem(client.post(f"{path}/reapproval", headers=as_["zsj-user"]), 409, "illegal_subscription_change")
    assert not community_shown(page(client, as_))  # nothing changes until it is approved
    problem(client.post(f"{path}/reapproval/approve", headers=as_["officer"]), 403, "forbidden")  # not yet theirs
    problem(client.post(f"{path}/reapproval/approve", headers=as_["zsj-steward"]), 403, "forbidden")
    provider = status_of(client.post(f"{path}/reapproval/approve", headers=as_["psga-steward"]), 200)
    assert (provider["reapproval_status"], provider["approved_level"]) == ("provider_approved", 2)
    problem(client.post(f"{path}/reapproval/approve", headers=as_["psga-steward"]), 403, "forbidden")
    officer = status_of(client.post(f"{path}/reapproval/approve", json={"level": 2}, headers=as_["officer"]), 200)
    assert (officer["reapproval_status"], officer["approved_level"]) == (None, 2)
    assert officer["masked_fields"] == ["公民身份号码", "姓名"]  # the community is at level 2 again
    latest = page(client, as_)
    assert community_shown(latest) and latest["masked_fields"] == ["公民身份号码", "姓名"]
    problem(client.post(f"{path}/reapproval/approve", headers=as_["psga-steward"]), 409, "illegal_subscription_change")
    assert len(audit_events(database, "subscription.reapprove", subscription_id=created["id"])) == 1

    # raised again, then re-approved at the new level: nothing of it is masked any more
    decide(client, as_, {"item": "PSGA-RK-0001", "field": COMMUNITY, "level": 3, "reason": "社区可定位到人"})
    assert not community_shown(page(client, as_))
    status_of(client.post(f"{path}/reapproval", headers=as_["zsj-steward"]), 200)
    status_of(client.post(f"{path}/reapproval/approve", headers=as_["psga-steward"]), 200)
    again = status_of(client.post(f"{path}/reapproval/approve", headers=as_["officer"]), 200)
    assert (again["approved_level"], again["masked_fields"]) == (3, [])
    final = page(client, as_)
    assert community_shown(final) and final["masked_fields"] == []
    decide(client, as_, {"item": "PSGA-RK-0001", "field": COMMUNITY, "level": 2, "reason": "复核后恢复二级"})


def test_a_re_approval_can_be_turned_down(client: TestClient, as_: Headers) -> None:
    created = status_of(client.post("/subscriptions", json=POPULATION, headers=as_["zsj-user"]), 201)
    path = f"/subscriptions/{created['id']}"
    problem(client.post(f"{path}/reapproval", headers=as_["zsj-user"]), 409, "illegal_subscription_change")
    status_of(client.post(f"{path}/approve", headers=as_["psga-steward"]), 200)
    status_of(client.post(f"{path}/approve", json={"level": 2}, headers=as_["officer"]), 200)
    status_of(client.post(f"{path}/reapproval", headers=as_["zsj-user"]), 200)
    problem(client.post(f"{path}/reapproval/reject", json={"reason": "no"}, headers=as_["zsj-user"]), 403, "forbidden")
    problem(client.post(f"{path}/reapproval/reject", json={"reason": ""}, headers=as_["psga-steward"]), 422,
            "invalid_request")  # fmt: skip
    rejected = status_of(client.post(f"{path}/reapproval/reject", json={"reason": "用途不需要三级字段"},
                                     headers=as_["psga-steward"]), 200)  # fmt: skip
    assert (rejected["status"], rejected["reapproval_status"], rejected["approved_level"]) == ("active", None, 2)
    problem(client.post(f"{path}/reapproval/reject", json={"reason": "x"}, headers=as_["officer"]), 409,
            "illegal_subscription_change")  # fmt: skip
    problem(client.post(f"{path}/reapproval/approve", headers=as_["zsj-user"]), 403, "forbidden")
    problem(client.post("/subscriptions/999999/reapproval", headers=as_["zsj-user"]), 404, "subscription_not_found")
