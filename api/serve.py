"""Serve the API in several processes that share the load evenly: ``python -m api.serve --workers 3``.

Each worker process listens on the same port through a socket of its own (``SO_REUSEPORT``), and the kernel
spreads new connections over those sockets. With one shared socket (``uvicorn --workers``), whichever process
wakes first accepts a whole burst of connections: 32 keep-alive clients were measured all on one of three
workers, the other two idle. One worker runs uvicorn in this process. The parent stops every worker when it is
told to stop (SIGTERM, SIGINT) or when one of them dies; the service manager restarts the whole. Responses name
no server software; the access log is the app's own redacted one (api/logs.py).

With several workers, each writes its metrics to files of its own in ``DATASHARE_METRICS_DIR`` (default
``<data dir>/metrics``), which the parent empties before they start, and whichever answers a scrape of /metrics
sums them (prometheus-client's multiprocess mode, api/metrics.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn
from prometheus_client import Gauge
from prometheus_client.multiprocess import mark_process_dead
from sqlalchemy.engine import make_url

from catalog.settings import Settings, get_settings

APP = "api.app:create_app"
# The files prometheus-client's multiprocess mode writes (values.py): ``<type>_<pid>.db``, a gauge's type with its
# mode (``gauge_livesum_<pid>.db``). Only these are an earlier server's; anything else in the directory is left.
METRICS_FILE = re.compile(
    r"^(?:counter|histogram|summary|gauge_(?:" + "|".join(sorted(Gauge._MULTIPROC_MODES)) + r"))_\d+\.db$"
)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="processes, each with its own socket")
    parser.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* from the proxy")
    parser.add_argument(
        "--forwarded-allow-ips", default=None,
        help="the proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated; default: "
        "$FORWARDED_ALLOW_IPS, else 127.0.0.1). The abuse limits count clients by it: behind a proxy that is not "
        "listed, every client is counted as the proxy",
    )  # fmt: skip
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def serve(options: argparse.Namespace) -> None:
    """One worker: uvicorn on a socket of its own."""
    config = uvicorn.Config(
        APP, factory=True, proxy_headers=options.proxy_headers, log_level=options.log_level, host=options.host,
        port=options.port, server_header=False,  # no `server: uvicorn`: the software is nobody's business
        forwarded_allow_ips=options.forwarded_allow_ips,
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[listening_socket(options.host, options.port)])


def supervise(options: argparse.Namespace) -> int:
    """0 when told to stop, 1 when a worker died on its own (its siblings are stopped too)."""
    metrics_dir = prepare_metrics_dir()
    context = multiprocessing.get_context("spawn")  # fresh interpreters: nothing of this one is shared
    workers = [context.Process(target=serve, args=(options,), name=f"api-{n}") for n in range(options.workers)]
    for worker in workers:
        worker.start()
    told_to_stop = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal told_to_stop
        told_to_stop = True
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn finishes the requests in flight, then exits

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    multiprocessing.connection.wait([worker.sentinel for worker in workers])  # the first to end ends them all
    died = not told_to_stop
    stop(signal.SIGTERM, None)
    for worker in workers:
        worker.join()
        forget_worker_metrics(worker.pid, metrics_dir)
    return 1 if died else 0


def prepare_metrics_dir() -> Path:
    """The workers' metrics directory, emptied of an earlier server's files, named to them through the environment
    they inherit (prometheus-client chooses its storage by it when it is imported)."""
    settings = get_settings()
    directory = settings.resolved_metrics_dir
    refuse_shared_metrics_dir(settings, directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # department volumes: for the server's user only
    for stale in directory.glob("*.db"):
        if METRICS_FILE.match(stale.name):
            stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # prometheus-client's own variable
    return directory


def refuse_shared_metrics_dir(settings: Settings, directory: Path) -> None:
    """Stop before touching a metrics directory that holds the platform's own files: the data folder (or a folder
    above it) or the SQLite database's folder. It is emptied and made private at every start."""
    held = [settings.resolved_data_dir]
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        held.append(Path(str(url.database)).resolve())
    if any(path.is_relative_to(directory) for path in held):
        raise SystemExit(f"DATASHARE_METRICS_DIR ({directory}) holds the data folder or the database: give it a "
                         "directory of its own (default <data dir>/metrics)")  # fmt: skip


def forget_worker_metrics(pid: int | None, directory: Path) -> None:
    """A worker that ended: its counts stay in the sums; only its ``live*`` gauges go."""
    if pid is not None:
        mark_process_dead(pid, str(directory))


def main(argv: list[str] | None = None) -> int:
    options = arguments(argv)
    if options.workers <= 1:
        serve(options)
        return 0
    return supervise(options)


if __name__ == "__main__":
    sys.exit(main())
