"""Servers the tests start themselves: ``python -m api.serve`` on a free local port, stopped by the pid it started."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def api_server(
    env: dict[str, str], *arguments: str, output: IO[bytes] | None = None, ready: Callable[[str], bool] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The API as production starts it, on a free port; yields the process and its address once ``ready`` (by
    default: /health answers). Stopped with SIGTERM (killed if it lingers) whatever the test did."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "api.serve", "--port", str(port), *arguments], cwd=ROOT, env=env,
                              stdout=output, stderr=subprocess.STDOUT if output else None)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    is_ready = ready or (lambda base: answers(f"{base}/health"))
    try:
        deadline = time.monotonic() + 60
        while not is_ready(base):
            assert time.monotonic() < deadline and server.poll() is None, "the API server did not start"
            time.sleep(0.2)
        yield server, base
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
