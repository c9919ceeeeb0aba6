"""``python -m api.serve``: several worker processes, each with its own socket on one port, all answering, and
all stopped when the server is told to stop or when one of them dies."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import api_server


def children(pid: int) -> set[int]:
    listed = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(child) for child in listed.read_text().split()} if listed.exists() else set()


@contextmanager
def serving(database: str, workers: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    env = {**os.environ, "DATASHARE_DATABASE_URL": database}
    with api_server(env, "--workers", str(workers), "--log-level", "warning") as running:
        yield running


def workers_listening(port: str) -> set[int]:
    """The processes with a listening socket on the port (from /proc/net/tcp and the processes' file descriptors)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == int(port):  # 0A: LISTEN
            inodes.add(fields[9])
    owners = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            owners.add(int(pid))
    return owners


@pytest.mark.parametrize("ending", ["sigterm", "a worker dies"])
def test_workers_listen_on_their_own_sockets_and_stop_together(database_factory: object, ending: str) -> None:
    database = database_factory("sqlite")  # type: ignore[operator]
    with serving(database, workers=2) as (server, base):
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        workers = children(server.pid) - {server.pid}
        listening = workers_listening(base.rsplit(":", 1)[1])
        assert len(listening) == 2 and listening <= workers  # one socket each; the parent holds none
        if ending == "sigterm":
            server.send_signal(signal.SIGTERM)
        else:
            os.kill(next(iter(listening)), signal.SIGKILL)
        assert (server.wait(timeout=30) == 0) == (ending == "sigterm")  # a worker's death is a failure
        time.sleep(0.2)
        assert not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in listening)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/health", timeout=2)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except OSError:
        return "zombie"


def test_the_trusted_proxies_reach_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a proxy the abuse limits count clients by X-Forwarded-For, believed from the listed proxies only."""
    from api import serve

    configs: list[object] = []
    monkeypatch.setattr(serve.uvicorn.Server, "run", lambda self, sockets: configs.append(self.config))
    monkeypatch.setattr(serve, "listening_socket", lambda host, port: None)
    serve.main(["--proxy-headers", "--forwarded-allow-ips", "172.18.0.1,10.0.0.0/8"])
    (config,) = configs
    assert config.proxy_headers and config.forwarded_allow_ips == "172.18.0.1,10.0.0.0/8"  # type: ignore[attr-defined]
