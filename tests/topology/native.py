"""docker/compose.yaml run natively: each service's command and environment, read from the compose file (and the
image's ENV from docker/Dockerfile), with the compose network's names and the containers' paths replaced by this
machine's. The topology test starts exactly what this gives; the compose test checks nothing is left unmapped."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
# The platform's own processes; postgres and redis are this machine's servers, prometheus is not the platform's.
PLATFORM_SERVICES = ("datashare-migrate", "airflow-init", "airflow-api-server", "airflow-scheduler",
                     "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "datashare-api")  # fmt: skip
COMPOSE_HOSTS = ("postgres", "redis", "airflow-api-server", "datashare-api")
CONTAINER_PATHS = ("/data", "/app", "/opt/airflow", "/run/secrets", "/audit-heads", "/tmp/datashare-metrics")
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<kind>:\?|:-)(?P<word>[^}]*))?\}")
DATABASE_URL = re.compile(r"(?P<scheme>(?:db\+)?postgresql\+psycopg://)[^@/]+@postgres:5432/(?P<database>\w+)")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def image_env() -> dict[str, str]:
    """The ENV instructions of docker/Dockerfile (continuation lines joined) that the processes read: not PATH (the
    environment's bin is put first on it natively) nor uv's, which build the image."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    return {name: value.strip('"') for name, value in env.items() if name != "PATH" and not name.startswith("UV_")}


def env_example_variables() -> list[str]:
    text = (DOCKER / ".env.example").read_text(encoding="utf-8")
    return re.findall(r"^(\w+)=", text, re.MULTILINE)


@dataclass
class Site:
    """Where the compose names point on this machine."""

    data_dir: Path
    airflow_home: Path
    secrets_dir: Path
    databases: dict[str, str]  # compose database name -> "user@127.0.0.1:5432/<this run's database>"
    redis_port: int
    airflow_port: int
    api_port: int
    variables: dict[str, str]  # the docker/.env values
    overrides: dict[str, str] = field(default_factory=dict)  # this run's ports and timings, on top of compose's

    @property
    def paths(self) -> dict[str, str]:
        return {
            "/data": str(self.data_dir), "/app/dags": str(ROOT / "dags"), "/opt/airflow": str(self.airflow_home),
            "/run/secrets": str(self.secrets_dir), "/audit-heads": str(self.data_dir.parent / "audit-heads"),
            "/tmp/datashare-metrics": str(self.data_dir.parent / "metrics"),
        }  # fmt: skip

    @property
    def hosts(self) -> dict[str, str]:
        return {
            "redis://redis:6379": f"redis://127.0.0.1:{self.redis_port}",
            "http://airflow-api-server:8080": f"http://127.0.0.1:{self.airflow_port}",
        }


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``, and ``$$`` for a dollar."""

    def one(match: re.Match[str]) -> str:
        name, kind, word = match["name"], match["kind"], match["word"]
        given = variables.get(name, "")
        if kind == ":?" and not given:
            raise KeyError(f"{name} is required by compose.yaml ({word}) and not set")
        return given or (word if kind == ":-" else "")

    return INTERPOLATION.sub(one, value).replace("$$", "$")


def localised(value: str, site: Site) -> str:
    """A compose value with the compose network's names and the containers' paths replaced by this machine's."""
    value = DATABASE_URL.sub(lambda match: match["scheme"] + site.databases[match["database"]], value)
    for compose_name, native in site.hosts.items():
        value = value.replace(compose_name, native)
    for container, native in sorted(site.paths.items(), key=lambda pair: -len(pair[0])):
        value = re.sub(rf"(?<![\w/]){re.escape(container)}(?=/|$|\")", native, value)
    return value


def service_env(service: str, site: Site) -> dict[str, str]:
    """The environment a service's process gets: the image's ENV, then the service's, localised."""
    declared = compose()["services"][service].get("environment", {})
    env = {name: localised(value, site) for name, value in image_env().items()}
    env.update({name: localised(interpolate(str(value), site.variables), site) for name, value in declared.items()})
    return env | site.overrides


def service_command(service: str, site: Site) -> list[str]:
    """The service's command with its program from this environment and its published port replaced."""
    command = [interpolate(str(part), site.variables) for part in compose()["services"][service]["command"]]
    program = {"airflow": str(BIN / "airflow"), "datashare": str(BIN / "datashare"), "python": sys.executable}
    command[0] = program[command[0]]
    if "--port" in command:
        port = site.airflow_port if service == "airflow-api-server" else site.api_port
        command[command.index("--port") + 1] = str(port)
    return [localised(part, site) for part in command]


def leftovers(value: str) -> list[str]:
    """Compose hosts or container paths a localised value still names (none, when the mapping is complete)."""
    hosts = [host for host in COMPOSE_HOSTS if re.search(rf"(//|@){re.escape(host)}[:/]", value)]
    paths = [path for path in CONTAINER_PATHS if re.search(rf"(?<![\w/.-]){re.escape(path)}(/|$)", value)]
    return hosts + paths
