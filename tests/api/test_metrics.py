"""/metrics on both backends: requests by route template and status, refusals by reason, rows served, the catalog's
figures read from the database (and kept a few seconds), and who may read them."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import create_engine

from api.app import create_app
from catalog.db import make_engine, session_scope
from catalog.ingest.quarantine import discard_batch
from catalog.ingest.service import ingest_export
from catalog.ops.metrics import CatalogFigures
from catalog.settings import Settings
from tests.api.conftest import POPULATION_REQUEST, SECRET

TOKEN = "metrics-token-metrics-token-metrics-token"  # 40 bytes
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def app_client(database: str, **settings: Any) -> TestClient:
    options = {"access_refresh_seconds": 0, "metrics_cache_seconds": 0} | settings
    return TestClient(create_app(Settings(database_url=database, secret_key=SecretStr(SECRET), **options)))


@pytest.fixture(scope="module")
def metered(database: str) -> Iterator[TestClient]:
    """An API process over the module's database whose catalog figures are read at every scrape."""
    with app_client(database) as client:
        yield client


@pytest.fixture(scope="module")
def subscribed(client: TestClient, as_: dict[str, dict[str, str]], published: list[str]) -> int:
    created = client.post("/subscriptions", json=POPULATION_REQUEST, headers=as_["zsj-user"]).json()
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2}, headers=as_["officer"])
    assert approved.json()["status"] == "active", approved.text
    return int(created["id"])


def test_requests_are_counted_by_route_template_and_status(
    metered: TestClient, as_: dict[str, dict[str, str]], published: list[str]
) -> None:
    before = scrape(metered)
    for _ in range(3):
        assert metered.get("/items/PSGA-RK-0001", headers=as_["zsj-user"]).status_code == 200
    assert metered.get("/items/NOPE-9999", headers=as_["zsj-user"]).status_code == 404
    assert metered.get(f"/no/such/{published[0]}", params={"id": published[0]}).status_code == 404
    after = scrape(metered)

    def counted(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        name = "datashare_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert counted("/items/{code}", "200") == 3
    assert counted("/items/{code}", "404") == 1
    assert counted("unrouted", "404") == 1
    latency = {"method": "GET", "route": "/items/{code}", "status": "200"}
    timed = value(after, "datashare_http_request_duration_seconds_count", **latency)
    assert timed - value(before, "datashare_http_request_duration_seconds_count", **latency) == 3
    assert value(after, "datashare_http_request_duration_seconds_bucket", le="+Inf", **latency) == timed
    text = metered.get("/metrics").text
    assert "PSGA-RK-0001" not in text and "NOPE" not in text and published[0] not in text  # never a path or query


def test_refusals_are_counted_by_reason(metered: TestClient, as_: dict[str, dict[str, str]]) -> None:
    before = scrape(metered)
    anonymous = metered.get("/subscriptions")
    unknown = metered.get("/items/NOPE-9999", headers=as_["zsj-user"])
    too_large = metered.post("/items", content=b"x" * (2 << 20), headers=as_["psga-steward"])
    invalid = metered.get("/items/PSGA-RK-0001/data", params={"limit": 0}, headers=as_["zsj-user"])  # not a refusal
    after = scrape(metered)
    reasons = {response.json()["code"]: response.status_code for response in (anonymous, unknown, too_large)}
    assert set(reasons.values()) == {401, 404, 413}, reasons

    def counted(reason: str) -> float:
        return value(after, "datashare_refusals_total", reason=reason) - value(
            before, "datashare_refusals_total", reason=reason
        )

    assert {reason: counted(reason) for reason in reasons} == dict.fromkeys(reasons, 1.0)
    assert invalid.status_code == 422 and counted(invalid.json()["code"]) == 0


def test_a_refusal_the_guard_audits_is_counted_once(
    metered: TestClient, as_: dict[str, dict[str, str]], published: list[str]
) -> None:
    before = scrape(metered)
    refused = metered.post("/items/PSGA-RK-0001/transitions", json={"to": "retired"}, headers=as_["zsj-user"])
    after = scrape(metered)
    assert refused.status_code == 403, refused.text
    name, reason = "datashare_refusals_total", refused.json()["code"]
    assert value(after, name, reason=reason) - value(before, name, reason=reason) == 1


def test_rows_served_are_counted_by_format_and_department(
    metered: TestClient, as_: dict[str, dict[str, str]], subscribed: int, published: list[str]
) -> None:
    name, labels = "datashare_rows_served_total", {"department": "zsj"}
    before = scrape(metered)
    page = metered.get("/items/PSGA-RK-0001/data", params={"limit": 7}, headers=as_["zsj-user"])
    download = metered.get("/items/PSGA-RK-0001/data.csv", headers=as_["zsj-user"])
    after = scrape(metered)
    assert page.status_code == download.status_code == 200
    assert len(page.json()["rows"]) == 7
    assert value(after, name, format="json", **labels) - value(before, name, format="json", **labels) == 7
    rows = len(published)
    assert value(after, name, format="csv", **labels) - value(before, name, format="csv", **labels) == rows


def test_the_catalog_figures_follow_a_batch_into_quarantine_and_out(
    metered: TestClient, database: str, published: list[str], tmp_path: Path
) -> None:
    runs, waiting = "datashare_ingest_runs", "datashare_quarantined_batches"
    before = scrape(metered)
    assert value(before, "datashare_catalog_figure_up", figure="ingest") == 1
    assert value(before, runs, outcome="published") >= 2  # the module's two samples
    drifted = "公民身份号码,姓名\n440307195307144048,陈华\n".encode()
    engine = make_engine(database)
    with session_scope(engine) as session:
        outcome = ingest_export(session, "PSGA-RK-0001", drifted, "p.csv", raw_dir=tmp_path, trigger="test")
    assert outcome.outcome == "quarantined"
    quarantined = scrape(metered)
    assert value(quarantined, runs, outcome="quarantined") == value(before, runs, outcome="quarantined") + 1
    assert value(quarantined, waiting) == value(before, waiting) + 1
    assert "陈华" not in metered.get("/metrics").text and "440307" not in metered.get("/metrics").text

    with session_scope(engine) as session:
        assert outcome.batch_id is not None
        discard_batch(session, outcome.batch_id, "ops", "a test export")
    engine.dispose()
    discarded = scrape(metered)
    assert value(discarded, waiting) == value(before, waiting)
    assert value(discarded, runs, outcome="discarded") == value(before, runs, outcome="discarded") + 1
    assert (
        sum(value(discarded, runs, outcome=o) for o in ("published", "quarantined", "discarded"))
        == sum(value(before, runs, outcome=o) for o in ("published", "quarantined", "discarded")) + 1
    )


@pytest.mark.parametrize(
    ("figure", "module", "name", "metric"),
    [
        ("freshness", "catalog.ops.freshness", "status_counts", "datashare_items_by_freshness"),
        (
            "deliveries",
            "catalog.notifications.outbox",
            "failing_deliveries",
            "datashare_notification_deliveries_failing",
        ),
    ],
)
def test_the_figures_of_other_services_mirror_them(
    metered: TestClient, database: str, published: list[str], figure: str, module: str, name: str, metric: str
) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        expected = getattr(importlib.import_module(module), name)(session)
    engine.dispose()
    samples = scrape(metered)
    assert value(samples, "datashare_catalog_figure_up", figure=figure) == 1
    shown = {labels: count for (sample, labels), count in samples.items() if sample == metric}
    if figure == "freshness":
        assert shown == {frozenset({("department", d), ("status", s)}): c for d, s, c in expected}
    else:
        assert shown == {frozenset({("channel", channel)}): count for channel, count in expected.items()}


def test_the_figures_are_read_at_most_once_per_cache_period() -> None:
    reads: list[int] = []

    def ingest_figure(session: Any) -> list[Any]:
        reads.append(1)
        return []

    now = [100.0]
    figures = CatalogFigures(create_engine("sqlite://"), cache_seconds=10, clock=lambda: now[0])
    figures.figures = {"ingest": ingest_figure}
    for _ in range(5):
        list(figures.collect())
    now[0] += 10
    list(figures.collect())
    assert len(reads) == 2


def test_a_figure_that_cannot_be_read_is_left_out_and_the_rest_still_served(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    figures = CatalogFigures(unreachable, cache_seconds=0)
    families = {family.name: family for family in figures.collect()}
    up = {sample.labels["figure"]: sample.value for sample in families["datashare_catalog_figure_up"].samples}
    assert up == {"ingest": 0, "freshness": 0, "deliveries": 0}
    assert set(families) == {"datashare_catalog_figure_up"}
    list(figures.collect())
    assert "postgres@" not in caplog.text


@pytest.mark.parametrize(
    ("mode", "token", "sent", "status"),
    [
        ("local", None, None, 200),  # a laptop: open
        ("local", TOKEN, None, 401),
        ("local", TOKEN, f"Bearer {TOKEN}", 200),
        ("production", None, None, 404),  # not served at all without a token
        ("production", None, f"Bearer {TOKEN}", 404),
        ("production", TOKEN, None, 401),
        ("production", TOKEN, f"Bearer {TOKEN[:-1]}x", 401),
        ("production", TOKEN, f"Basic {TOKEN}", 401),
        ("production", TOKEN, f"Bearer {TOKEN}", 200),
    ],
)
def test_who_may_read_the_metrics(database: str, mode: str, token: str | None, sent: str | None, status: int) -> None:
    secret = SecretStr(token) if token is not None else None
    with app_client(database, mode=mode, metrics_token=secret) as client:
        response = client.get("/metrics", headers={"Authorization": sent} if sent else {})
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer" and TOKEN not in response.text
    if status == 200:
        assert "datashare_http_requests_total" in response.text


def test_a_short_metrics_token_is_refused_outside_local_mode() -> None:
    with pytest.raises(ValueError, match="DATASHARE_METRICS_TOKEN"):
        Settings(mode="production", secret_key=SecretStr(SECRET), metrics_token=SecretStr("short"))
