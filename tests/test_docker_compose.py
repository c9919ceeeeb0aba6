"""docker/compose.yaml and docker/prometheus.yml agree with the code (no Docker engine here): Prometheus scrapes the
API's metrics path on the port the API listens on, with the token the API checks; the API's healthcheck asks a
readiness path the app serves; the workers' metrics directory is not on the shared data volume."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.health import router as health_router
from api.metrics import METRICS_PATH
from catalog.settings import Settings

DOCKER = Path(__file__).resolve().parents[1] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    return loaded


def env_name(field: str) -> str:
    prefix = Settings.model_config.get("env_prefix", "")
    assert field in Settings.model_fields
    return f"{prefix}{field}".upper()


def api_port(compose: dict[str, Any]) -> str:
    command = compose["services"]["datashare-api"]["command"]
    return str(command[command.index("--port") + 1])


def test_prometheus_scrapes_the_metrics_path_on_the_port(compose: dict[str, Any], prometheus: dict[str, Any]) -> None:
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "datashare-api"]
    assert job["metrics_path"] == METRICS_PATH
    (targets,) = [config["targets"] for config in job["static_configs"]]
    assert targets == [f"datashare-api:{api_port(compose)}"]
    published = compose["services"]["datashare-api"]["ports"][0]
    assert published.endswith(f":{api_port(compose)}")


def test_prometheus_sends_the_token_the_api_checks(compose: dict[str, Any], prometheus: dict[str, Any]) -> None:
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "datashare-api"]
    authorization = job["authorization"]
    assert authorization["type"] == "Bearer"
    secret = Path(authorization["credentials_file"])
    assert secret.parent == Path("/run/secrets")
    assert secret.name in compose["services"]["prometheus"]["secrets"]
    variable = env_name("metrics_token")
    assert compose["secrets"][secret.name] == {"environment": variable}  # made from the value the API gets
    api_env = compose["services"]["datashare-api"]["environment"]
    assert api_env[variable] == f"${{{variable}:?set it in docker/.env}}"  # required: production serves none without
    assert re.search(rf"^{variable}=$", (DOCKER / ".env.example").read_text(encoding="utf-8"), re.MULTILINE)


def test_the_metrics_of_the_workers_stay_in_the_api_container(compose: dict[str, Any]) -> None:
    api = compose["services"]["datashare-api"]
    metrics_dir = Path(api["environment"][env_name("metrics_dir")])
    shared = [Path(volume.split(":")[1]) for volume in api["volumes"]]
    assert not any(metrics_dir.is_relative_to(mount) for mount in shared)
    assert "--workers" in api["command"]


def test_the_api_healthcheck_asks_readiness(compose: dict[str, Any]) -> None:
    test = " ".join(compose["services"]["datashare-api"]["healthcheck"]["test"])
    (path,) = re.findall(rf"http://localhost:{api_port(compose)}(/[\w/]+)", test)
    assert path == "/health/ready"
    assert path in {route.path for route in health_router.routes}  # type: ignore[attr-defined]


def test_the_prometheus_image_is_pinned_and_its_data_kept(compose: dict[str, Any]) -> None:
    service = compose["services"]["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", service["image"])
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in service["volumes"]
    assert "prometheus-data" in compose["volumes"]
    assert all(port.startswith("${PROMETHEUS_BIND:-127.0.0.1}:") for port in service["ports"])
