"""The console's utilisation page: the platform's figures and chart for data officers, a department's own for its
people (whatever department they ask for), in Chinese and English, and a sign-in for the anonymous."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from catalog.db import make_engine, session_scope, utcnow
from tests.api.test_console import signed_in
from tests.catalog.utilisation.fixture import use

ENGLISH = {"Accept-Language": "en"}
CHINESE = {"Accept-Language": "zh-CN"}


@pytest.fixture(scope="module")
def uses(database: str) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        use(session, utcnow(), "zsj", "data.read", "allowed", "PSGA-RK-0001", 10)
        use(session, utcnow() - timedelta(days=1), "wjj", "data.verify", "allowed", "PSGA-RK-0001")
    engine.dispose()


def cells(html: str, heading: str, table: int = 0) -> str:
    """The value beside a row heading, in the first table that has it (or the ``table``-th)."""
    found = re.findall(rf"<th scope=\"row\">{re.escape(heading)}</th><td>([^<]*)</td>", html)
    assert len(found) > table, heading
    return str(found[table])


def test_the_anonymous_are_sent_to_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    response = client.get("/console/utilisation", follow_redirects=False)
    assert response.status_code in (302, 303) and "/console/sign-in" in response.headers["location"]
    assert 'href="/console/utilisation"' not in client.get("/console/").text


def test_an_officer_sees_the_platform_in_chinese_and_in_english(client: TestClient, uses: None) -> None:
    signed_in(client, "officer")
    chinese = client.get("/console/utilisation", headers=CHINESE)
    assert chinese.status_code == 200
    page = chinese.text
    assert "<h1>使用情况</h1>" in page and "全平台：所有已发布数据项" in page
    assert 'href="/console/utilisation"' in page  # the navigation's link
    assert cells(page, "已发布数据项") == "3" and cells(page, "读取").startswith("1 ")
    assert "各部门每月已发布数据项的使用比例" in page and page.count('fill="#2f6fb0"') == 12 * page.count(
        'href="/console/utilisation?department=')  # a cell per department and month  # fmt: skip
    english = client.get("/console/utilisation", headers=ENGLISH).text
    assert "<h1>Utilisation</h1>" in english and "Share of published items used, per department and month" in english
    assert cells(english, "Verification look-ups") == "1" and "The most used items" in english
    assert "PSGA-RK-0001" in english and "使用情况" not in english
    psga = client.get("/console/utilisation?department=psga", headers=ENGLISH).text
    assert "As provider: the published items" in psga and "As consumer: what its people and systems used" in psga
    assert re.search(r"<td>[^<]*\(1\), [^<]*\(1\)</td>", psga)  # both consumers, each with one use, shown


def test_a_department_user_sees_their_own_department_only(client: TestClient, uses: None) -> None:
    signed_in(client, "zsj-user")
    page = client.get("/console/utilisation?department=psga", headers=ENGLISH).text
    assert "As consumer: what its people and systems used" in page
    assert cells(page, "Reads") == "0 (0 rows)"  # zsj's items, as provider
    assert cells(page, "Reads", 1) == "1 (10 rows)" and "The whole platform" not in page  # what zsj read
    assert 'href="/console/utilisation"' in page
    assert re.findall(r'class="axis">(\w+)</text>', page)[:1] == ["zsj"]  # the chart: its department alone
    client.cookies.clear()
