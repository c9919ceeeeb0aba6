"""Verification in the console: a verification subscriber pastes records and sees match or no match and the granted
fields masked; the item's page offers it (and no preview: a verification subscription reads no data); a person
without such a subscription gets no page; a refused paste keeps what was typed and says what to fix."""

from __future__ import annotations

import csv
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import status_of
from tests.api.test_console import signed_in
from tests.api.test_verification import VERIFY_REQUEST, Headers

PAGE = "/console/items/PSGA-RK-0001/verify"


def test_a_verification_subscriber_verifies_pasted_records(
    client: TestClient, as_: Headers, published: list[str], samples_dir: Path
) -> None:
    signed_in(client, "zsj-user")  # asked for from the item's page, as a verification subscription
    form = {
        "csrf_token": client.cookies["datashare_csrf"],
        "fields": VERIFY_REQUEST["fields"],
        "kind": "verify",
        "purpose": VERIFY_REQUEST["purpose"],
        "legal_basis": VERIFY_REQUEST["legal_basis"],
        "period_days": "90",
    }
    asked = client.post("/console/items/PSGA-RK-0001/request", data=form, follow_redirects=False)
    assert asked.status_code == 303, asked.text
    number = int(asked.headers["location"].rsplit("/", 1)[1])
    assert status_of(client.get(f"/subscriptions/{number}", headers=as_["zsj-user"]), 200)["kind"] == "verify"
    client.post(f"/subscriptions/{number}/approve", headers=as_["psga-steward"])
    client.post(f"/subscriptions/{number}/approve", json={"level": 2}, headers=as_["officer"])
    with (samples_dir / "psga_population_20261121.csv").open(encoding="utf-8-sig") as export:
        first, second = list(csv.DictReader(export))[:2]

    signed_in(client, "wjj-user")  # no subscription: no page
    assert client.get(PAGE).status_code == 404

    signed_in(client, "zsj-user")
    item = client.get("/console/items/PSGA-RK-0001").text
    assert f'href="{PAGE}"' in item and "/preview" not in item
    subscription = client.get(f"/console/subscriptions/{number}").text
    assert (
        "数据核验（不读取数据）" in subscription and f'href="{PAGE}"' in subscription and "/preview" not in subscription
    )
    pasted = f"公民身份号码,所属社区\n{first['公民身份号码']},{first['所属社区']}\n{second['公民身份号码']},别的社区\n"
    token = client.cookies["datashare_csrf"]
    answer = client.post(PAGE, data={"csrf_token": token, "records": pasted})
    assert answer.status_code == 200, answer.text
    assert "2 条记录中 1 条一致" in answer.text and "一致" in answer.text and "不一致" in answer.text
    assert first["所属社区"] in answer.text and first["姓名"] not in answer.text  # the name masked
    assert first["联系电话"] not in answer.text

    refused = client.post(PAGE, data={"csrf_token": token, "records": f"联系电话\n{first['联系电话']}\n"})
    assert refused.status_code == 422 and "每条记录须包含数据项的主键" in refused.text
    assert first["联系电话"] in refused.text  # kept in the form, to fix
    client.cookies.clear()
