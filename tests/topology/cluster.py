"""The production topology started natively (tests/topology/native.py gives each service's command and environment):
Redis of its own, PostgreSQL databases of its own on this machine's server, Airflow's api-server, scheduler,
dag-processor and triggerer and two Celery workers, each a process group of its own, stopped by the pid it started."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from tests.conftest import create_postgres_database, drop_postgres_database
from tests.servers import answers, free_port
from tests.topology.native import BIN, Site, env_example_variables, service_command, service_env

WORKERS = ("worker1", "worker2")
ONE_SHOTS = ("datashare-migrate", "airflow-init")
LONG_RUNNING = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                "datashare-api")  # fmt: skip
STARTED = (*ONE_SHOTS, *LONG_RUNNING, "airflow-worker")  # every platform service of compose.yaml: a compose test checks


def _secret_values() -> dict[str, str]:
    """A value for every variable of docker/.env.example, as an operator fills them in."""
    values = {name: secrets.token_hex(24) for name in env_example_variables()}
    values["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    values["DATASHARE_TRUSTED_PROXIES"] = "127.0.0.1"
    values["DATASHARE_API_WORKERS"] = "1"  # compose's default is 3, for a host of its own
    return values


def _signing_key(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)


def _overrides() -> dict[str, str]:
    """What this run sets beyond compose: ports free on this machine (every container has its own), and timings that
    let a test see a lost worker within a minute rather than Airflow's five."""
    return {
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    }


@dataclass
class Cluster:
    site: Site
    logs: Path
    processes: dict[str, psutil.Popen] = field(default_factory=dict)

    @property
    def platform_url(self) -> str:
        return f"postgresql+psycopg://{self.site.databases['datashare']}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.site.api_port}"

    @property
    def airflow(self) -> str:
        return f"http://127.0.0.1:{self.site.airflow_port}"

    def env(self, service: str, **extra: str) -> dict[str, str]:
        base = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(self.logs), "LANG": "C.UTF-8"}
        return base | service_env(service, self.site) | extra

    def run(self, service: str) -> None:
        """A one-shot service (a migration), to its end."""
        log = self.logs / f"{service}.log"
        with log.open("wb") as output:
            done = subprocess.run(service_command(service, self.site), env=self.env(service), cwd=self.logs,
                                  stdout=output, stderr=subprocess.STDOUT, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, f"{service} failed:\n{log.read_text(errors='replace')[-3000:]}"

    def start(self, name: str, service: str, *arguments: str, **extra: str) -> psutil.Popen:
        command = [*service_command(service, self.site), *arguments]
        with (self.logs / f"{name}.log").open("ab") as output:
            process = psutil.Popen(command, env=self.env(service, **extra), cwd=self.logs, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.processes[name] = process
        return process

    def start_worker(self, name: str) -> psutil.Popen:
        return self.start(name, "airflow-worker", "--celery-hostname", f"{name}@%h",
                          AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))  # fmt: skip

    def kill(self, name: str) -> None:
        """SIGKILL the process and everything it started, as a machine lost would stop it."""
        process = self.processes[name]
        family = [process, *process.children(recursive=True)]
        os.killpg(process.pid, signal.SIGKILL)
        for member in family:
            with suppress(psutil.NoSuchProcess):
                member.kill()
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except psutil.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def log_tail(self, name: str, characters: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-characters:]

    def require_running(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log_tail(name)}"

    # --- Airflow's REST API, as an operator calls it -------------------------------------------------------------

    def password(self, user: str) -> str:
        passwords = self.site.airflow_home / "auth" / "simple_auth_manager_passwords.json"
        return str(json.loads(passwords.read_text(encoding="utf-8"))[user])

    def client(self, user: str = "admin") -> httpx.Client:
        token = httpx.post(f"{self.airflow}/auth/token", json={"username": user, "password": self.password(user)},
                           timeout=30).raise_for_status().json()["access_token"]  # fmt: skip
        return httpx.Client(base_url=f"{self.airflow}/api/v2", headers={"Authorization": f"Bearer {token}"},
                            timeout=60)  # fmt: skip

    def celery_totals(self) -> dict[str, int]:
        """Tasks each live Celery worker has run since it started, by its node name (Celery's own statistics)."""
        from celery import Celery

        app = Celery(broker=f"redis://127.0.0.1:{self.site.redis_port}/0")
        try:
            stats: dict[str, Any] = app.control.inspect(timeout=5).stats() or {}
        finally:
            app.close()
        return {node.split("@")[0]: sum(info.get("total", {}).values()) for node, info in stats.items()}


def wait_for(what: str, check: Callable[[], Any], cluster: Cluster, timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        cluster.require_running()
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)


@contextmanager
def redis_server(folder: Path) -> Iterator[int]:
    port = free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
               "--dir", str(folder)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def postgres_databases(*names: str) -> Iterator[dict[str, str]]:
    """A database of this run's own per compose database, as ``user@host:port/database``."""
    created: dict[str, str] = {}
    try:
        for name in names:
            url = make_url(create_postgres_database(f"datashare_topology_{name}"))
            created[name] = f"{url.username}@{url.host}:{url.port}/{url.database}"
        yield created
    finally:
        for address in created.values():
            drop_postgres_database(f"postgresql+psycopg://{address}")


@contextmanager
def cluster(root: Path, prepare: Callable[[Cluster], None]) -> Iterator[Cluster]:
    """The whole topology: migrations first, ``prepare`` (the catalog, the exports), then every long-running service
    and two workers; stopped whatever the test did."""
    with ExitStack() as stack:
        (root / "redis").mkdir()
        redis_port = stack.enter_context(redis_server(root / "redis"))
        databases = stack.enter_context(postgres_databases("datashare", "airflow"))
        airflow_port = free_port()
        variables = _secret_values() | {"AIRFLOW_BASE_URL": f"http://127.0.0.1:{airflow_port}"}
        site = Site(root / "data", root / "airflow", root / "secrets", databases, redis_port, airflow_port,
                    free_port(), variables, _overrides())  # fmt: skip
        for folder in (site.data_dir, site.airflow_home / "auth", site.airflow_home / "logs", root / "logs"):
            folder.mkdir(parents=True)
        _signing_key(site.secrets_dir / "audit_signing_key")
        topology = Cluster(site, root / "logs")
        stack.callback(topology.stop)
        for one_shot in ONE_SHOTS:
            topology.run(one_shot)
        prepare(topology)
        for service in LONG_RUNNING:
            topology.start(service, service)
        for worker in WORKERS:
            topology.start_worker(worker)
        wait_for("Airflow's api-server", lambda: answers(f"{topology.airflow}/api/v2/monitor/health"), topology,
                 timeout=180)  # fmt: skip
        wait_for("the platform API to be ready", lambda: answers(f"{topology.api}/health/ready"), topology, timeout=60)
        yield topology
