"""What the API exposes besides its data: a streamed body over the cap is a 413 like a declared one, responses are
neither stored nor sniffed and name no server, the interactive docs work with no network and can be turned off,
the OpenAPI document declares bearer authentication where a caller is identified, and no query value (a filter's
resident ID) reaches the access log, nor a statement's parameters a database error."""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from api.app import MAX_BODY_BYTES, create_app
from api.logs import loggable_target
from catalog.settings import Settings
from tests.api.conftest import PASSWORD, SECRET
from tests.api.test_auth_and_catalog import assert_problem
from tests.servers import api_server as running_api

RESIDENT_ID = "440307196512013153"


def streamed(*chunks: bytes) -> Iterator[bytes]:
    """A body sent in chunks with no Content-Length (Transfer-Encoding: chunked)."""
    yield from chunks


def test_a_streamed_body_over_the_cap_is_refused_with_413(client: TestClient) -> None:
    body = streamed(b'{"username": "zsj-user", "password": "', b"y" * MAX_BODY_BYTES, b'"}')
    response = client.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "request_too_large")


def test_a_streamed_body_under_the_cap_is_read_whole(client: TestClient) -> None:
    body = streamed(b'{"username": "zsj-user", ', f'"password": "{PASSWORD}"'.encode(), b"}")
    response = client.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text


def test_responses_are_neither_stored_nor_sniffed(
    client: TestClient, as_: dict[str, dict[str, str]], published: list[str]
) -> None:
    responses = [
        client.get("/items/SCJG-FR-0001/data", params={"limit": 2}),
        client.get("/items/SCJG-FR-0001/data.csv"),
        client.get("/items", headers=as_["zsj-user"]),
        client.get("/subscriptions", headers=as_["zsj-user"]),
        client.get("/items/NO-SUCH-ITEM"),
        client.post("/auth/login", json={"username": "zsj-user", "password": "wrong"}),
        client.get("/openapi.json"),
    ]
    for response in responses:
        assert response.status_code < 500, response.text
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


def test_an_unexpected_error_is_neither_stored_nor_sniffed_either() -> None:
    app = create_app(Settings(secret_key=SecretStr(SECRET)))

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    response = TestClient(app, raise_server_exceptions=False).get("/broken")
    assert response.status_code == 500
    assert response.headers["cache-control"] == "no-store" and response.headers["x-content-type-options"] == "nosniff"


def docs_app(**settings: Any) -> TestClient:
    """The app without its lifespan: no database is needed to serve the docs and the OpenAPI document."""
    return TestClient(create_app(Settings(secret_key=SecretStr(SECRET), **settings)))


def referenced_urls(html: str) -> list[str]:
    """Every URL a docs page loads: its tags' src and href, and the OpenAPI document its script fetches."""
    return re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"(?:url|spec-url)[:=] ?['\"]([^'\"]+)", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_everything_from_the_app_itself(page: str) -> None:
    app = docs_app()
    html = app.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "http://" not in html.text and "https://" not in html.text  # nothing from a CDN, no web fonts
    urls = referenced_urls(html.text)
    assert "/openapi.json" in urls and any(url.endswith(".js") for url in urls)
    for url in urls:
        asset = app.get(url)
        assert asset.status_code == 200 and asset.content, url
        assert asset.headers["x-content-type-options"] == "nosniff"
        if url != "/openapi.json":
            assert "no-store" not in asset.headers.get("cache-control", ""), url  # static assets may be cached


@pytest.mark.parametrize(
    ("mode", "api_docs", "served"),
    [("local", None, True), ("production", None, False), ("production", True, True), ("local", False, False)],
)
def test_the_interactive_docs_follow_the_setting(mode: str, api_docs: bool | None, served: bool) -> None:
    app = docs_app(mode=mode, api_docs=api_docs)
    for page in ("/docs", "/redoc"):
        assert app.get(page).status_code == (200 if served else 404), page
    assets = [url for url in referenced_urls(docs_app().get("/docs").text) if url != "/openapi.json"]
    assert assets and all(app.get(url).status_code == (200 if served else 404) for url in assets)
    assert app.get("/openapi.json").status_code == 200  # clients are generated from it


def test_the_openapi_document_declares_bearer_authentication_where_a_caller_is_identified() -> None:
    schema = docs_app().get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert [scheme for scheme in schemes.values() if scheme["type"] == "http"] == [
        {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    ]
    operations = {(method, path): operation for path, item in schema["paths"].items()
                  for method, operation in item.items()}  # fmt: skip
    unsecured = {key for key, operation in operations.items() if "security" not in operation}
    assert unsecured == {("post", "/auth/login"), ("get", "/health"), ("get", "/health/live"), ("get", "/health/ready")}
    assert all(operations[key]["security"] == [{"bearer": []}] for key in operations.keys() - unsecured)


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        (f"/items/A-1/data?filter=%E5%85%AC%E6%B0%91%E8%BA%AB%E4%BB%BD%E5%8F%B7%E7%A0%81:{RESIDENT_ID}&limit=5",
         "/items/A-1/data?filter=公民身份号码:*&limit=*"),
        (f"/items/A-1/data.csv?filter={RESIDENT_ID}", "/items/A-1/data.csv?filter=*"),  # not name:value: all value
        (f"/items/A-1/data?filter={RESIDENT_ID}:%E5%A7%93%E5%90%8D", "/items/A-1/data?filter=*:*"),  # swapped
        ("/items/A-1/data?filter=a%0Ab:1&after=3&after=4&x", "/items/A-1/data?filter=a%0Ab:*&after=*&after=*&x"),
        (f"/items/{RESIDENT_ID}", "/items/*"),
        (f"/subscriptions/2147483647?{RESIDENT_ID}=1", "/subscriptions/2147483647?*=*"),  # row ids are kept
        ("/health", "/health"),
        ("/items/A-1/data?%E5%A7%93%E5%90%8D:%E5%BC%A0%E4%B8%89&x", "/items/A-1/data?*&x"),  # a value where a name is
        ("/items/A-1/data?138-0013-8000", "/items/A-1/data?*"),
    ],
)  # fmt: skip
def test_a_logged_request_keeps_the_path_and_names_never_a_value(target: str, logged: str) -> None:
    assert loggable_target(target) == logged


@pytest.fixture
def api_server(database_factory: Any, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``python -m api.serve`` as production starts it, on a free port; yields its address and its log file."""
    log = tmp_path / "api.log"
    env = {
        **os.environ,
        "DATASHARE_DATABASE_URL": database_factory("sqlite"),
        "DATASHARE_SECRET_KEY": SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as output, running_api(env, output=output) as (_, base):
        yield base, log


def test_the_server_names_no_software_and_logs_no_query_value(api_server: tuple[str, Path]) -> None:
    base, log = api_server
    refused = httpx.get(f"{base}/items/PSGA-RK-0001/data", params={"filter": f"公民身份号码:{RESIDENT_ID}", "limit": 5})
    assert refused.status_code in (401, 403, 404, 422), refused.text
    assert "server" not in refused.headers
    assert refused.headers["x-content-type-options"] == "nosniff" and refused.headers["cache-control"] == "no-store"
    deadline = time.monotonic() + 10
    while "/items/PSGA-RK-0001/data" not in log.read_text(encoding="utf-8") and time.monotonic() < deadline:
        time.sleep(0.1)
    logged = log.read_text(encoding="utf-8")
    assert f'"GET /items/PSGA-RK-0001/data?filter=公民身份号码:*&limit=* HTTP/1.1" {refused.status_code}' in logged
    assert RESIDENT_ID[:6] not in logged and RESIDENT_ID[-6:] not in logged


def test_a_database_error_does_not_carry_the_statements_values(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE exposure_probe (k INTEGER UNIQUE, id_no VARCHAR(18))"))
    try:
        insert = text("INSERT INTO exposure_probe (k, id_no) VALUES (1, :id_no)")
        with pytest.raises(IntegrityError) as refused, engine.begin() as connection:
            connection.execute(insert, {"id_no": RESIDENT_ID})
            connection.execute(insert, {"id_no": RESIDENT_ID})
        logged = "".join(traceback.format_exception(refused.value))  # as a log handler would write it, with causes
        assert "exposure_probe" in logged and RESIDENT_ID not in logged
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE exposure_probe"))
