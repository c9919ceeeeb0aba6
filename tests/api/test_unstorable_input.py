"""A NUL character is refused as invalid input on both backends, never a server error: PostgreSQL takes none in text
(SQLite does). In an address before any endpoint; in a body by the models (NO_NUL) or, for a field without, when the
driver refuses it."""

from __future__ import annotations

from fastapi.testclient import TestClient

Headers = dict[str, dict[str, str]]


def test_a_nul_character_in_an_address_is_refused_by_the_api_and_the_console(client: TestClient) -> None:
    for path in ("/items/PSGA%00", "/items?text=a%00b", "/console/items/PSGA%00", "/console/?department=%00"):
        answer = client.get(path)
        if path.startswith("/console"):
            assert (answer.status_code, answer.headers["content-type"]) == (400, "text/html; charset=utf-8"), path
            assert "无法识别该请求" in answer.text and "content-security-policy" in answer.headers
        else:
            assert answer.status_code == 422 and answer.json()["code"] == "invalid_request", path


def test_a_nul_character_in_a_body_is_refused(client: TestClient, as_: Headers) -> None:
    request = {"item": "PSGA-RK-0001", "fields": ["姓名"], "purpose": "核对\x00", "legal_basis": "条例",
               "period_days": 30}  # fmt: skip
    answer = client.post("/subscriptions", json=request, headers=as_["zsj-user"])
    assert answer.status_code == 422, answer.text
    signed_in = client.post("/console/sign-in", data={"username": "zsj\x00", "password": "x"})
    assert signed_in.status_code in (400, 403, 422), signed_in.status_code
