"""A value the database cannot take is refused as invalid input on both backends, never a server error: PostgreSQL
takes no NUL character in text (SQLite does, and finds nothing with it)."""

from __future__ import annotations

from fastapi.testclient import TestClient

Headers = dict[str, dict[str, str]]


def test_a_nul_character_in_an_address_is_refused_by_the_api_and_the_console(client: TestClient) -> None:
    for path in ("/items/PSGA%00", "/console/items/PSGA%00", "/console/?department=%00", "/console/?text=a%00b"):
        answer = client.get(path)
        assert answer.status_code in (200, 400, 404, 422), (path, answer.status_code)
        assert "Traceback" not in answer.text


def test_a_nul_character_in_a_body_is_refused(client: TestClient, as_: Headers) -> None:
    request = {"item": "PSGA-RK-0001", "fields": ["姓名"], "purpose": "核对\x00", "legal_basis": "条例",
               "period_days": 30}  # fmt: skip
    answer = client.post("/subscriptions", json=request, headers=as_["zsj-user"])
    assert answer.status_code == 422, answer.text
    signed_in = client.post("/console/sign-in", data={"username": "zsj\x00", "password": "x"})
    assert signed_in.status_code in (400, 403, 422), signed_in.status_code
