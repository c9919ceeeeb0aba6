"""docker/compose.yaml and docker/prometheus.yml agree with the code (no Docker engine here): Prometheus scrapes the
API's metrics path on the port the API listens on, with the token the API checks; the API's healthcheck asks a
readiness path the app serves; the workers' metrics directory is not on the shared data volume. Every platform
service's command, options and environment variables exist in the code, and are what the native topology test
(tests/topology) runs: it reads them from compose.yaml, and nothing of the compose network is left once mapped."""

from __future__ import annotations

import importlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from api import serve
from api.health import router as health_router
from api.metrics import METRICS_PATH
from catalog.settings import Settings
from tests.topology import native

DOCKER = Path(__file__).resolve().parents[1] / "docker"
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="datashare-airflow-"))  # Airflow's CLI parser is read


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


# --- compose kept honest: what each platform service runs exists, and is what the native topology test runs ---------


def test_the_native_topology_starts_every_platform_service(compose: dict[str, Any]) -> None:
    from tests.topology.cluster import STARTED

    assert set(compose["services"]) - set(native.PLATFORM_SERVICES) == {"postgres", "redis", "prometheus"}
    assert sorted(STARTED) == sorted(native.PLATFORM_SERVICES)


@pytest.mark.parametrize("service", native.PLATFORM_SERVICES)
def test_a_service_runs_natively_with_nothing_of_the_compose_network_left(service: str, tmp_path: Path) -> None:
    site = native.Site(tmp_path / "data", tmp_path / "airflow", tmp_path / "secrets",
                       {"datashare": "u@127.0.0.1:5432/d", "airflow": "u@127.0.0.1:5432/a"}, 6380, 8081, 8001,
                       dict.fromkeys(native.env_example_variables(), "x"))  # fmt: skip
    values = [*native.service_env(service, site).values(), *native.service_command(service, site)]
    assert [(value, native.leftovers(value)) for value in values if native.leftovers(value) or "${" in value] == []


@pytest.mark.parametrize("service", native.PLATFORM_SERVICES)
def test_every_command_and_its_options_exist(compose: dict[str, Any], service: str) -> None:
    command = [native.interpolate(str(part), {"DATASHARE_TRUSTED_PROXIES": "10.0.0.1"})
               for part in compose["services"][service]["command"]]  # fmt: skip
    program, arguments = command[0], command[1:]
    if program == "airflow":
        airflow_parser().parse_args(arguments)  # exits (fails the test) on an unknown command or option
    elif program == "datashare":
        assert datashare_command(arguments) is not None, command
    else:
        assert program == "python" and arguments[:2] == ["-m", "api.serve"], command
        serve.arguments(arguments[2:])


def test_every_healthcheck_command_exists(compose: dict[str, Any]) -> None:
    for service in ("airflow-dag-processor", "airflow-triggerer"):
        test = compose["services"][service]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "airflow"]
        airflow_parser().parse_args(test[2:])
    worker_check = compose["services"]["airflow-worker"]["healthcheck"]["test"][1]
    (module, attribute) = re.search(r"--app ([\w.]+)\.(\w+) inspect ping", worker_check).groups()  # type: ignore[union-attr]
    assert hasattr(importlib.import_module(module), attribute)


def test_every_environment_variable_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    from airflow.configuration import conf

    airflow_options = {(section, option) for section, described in conf.configuration_description.items()
                       for option in described.get("options", {})}  # fmt: skip
    init_script = (DOCKER / "postgres-init" / "10-create-databases.sh").read_text(encoding="utf-8")
    unknown = []
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("AIRFLOW__"):
                section, option = variable.removeprefix("AIRFLOW__").lower().split("__", 1)
                known = (section, option) in airflow_options
            elif variable.startswith("DATASHARE_") and name != "postgres":
                known = variable.removeprefix("DATASHARE_").lower() in Settings.model_fields
            else:  # the postgres image's own, or read by its init script
                known = variable.startswith("POSTGRES_") or f"${{{variable}" in init_script
            if not known:
                unknown.append((name, variable))
    assert unknown == []


def test_every_required_variable_is_in_the_env_example(compose: dict[str, Any]) -> None:
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required <= set(native.env_example_variables())


def airflow_parser() -> Any:
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def datashare_command(words: list[str]) -> Any:
    """The click command the words name (options after them are left to the command), or None."""
    from click import Context
    from typer.main import get_command

    from catalog.cli import app

    command: Any = get_command(app)
    for word in words:
        if word.startswith("-"):
            break
        command = command.get_command(Context(command), word)
        if command is None:
            return None
    return command
