"""Where source systems may point (issue 12): file sources only inside the drop area, HTTP sources never at this
host, link-local or cloud metadata addresses unless an operator allows the host; a credential from the environment
goes to the declared origin only."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from catalog.ingest import source_safety
from catalog.ingest.connectors import ExportNotReachable, fetch_pages, http_token_variable, newest_file
from catalog.ingest.source_safety import UnsafeSourceLocation, checked_address, checked_file_url
from tests.catalog.helpers import pull_complaints_from

LOCAL = ["127.0.0.1"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder whose drop area holds one export, beside files that are not exports (the signing key)."""
    (tmp_path / "drop" / "psga").mkdir(parents=True)
    (tmp_path / "drop" / "psga" / "psga_20261120.csv").write_text("a\n1\n")
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "signing-key.pem").write_text("secret")
    return tmp_path


@pytest.mark.parametrize(
    "location",
    [
        "file:///etc",
        "audit",  # inside the data folder, outside its drop area
        "drop/%2e%2e/audit",
        "file:///drop/%2e%2e/%2e%2e/etc",
        "file://otherhost/etc",
        "ftp://exports.example/psga",
    ],
)
def test_a_file_source_outside_the_drop_area_is_refused(data_dir: Path, location: str) -> None:
    with pytest.raises(UnsafeSourceLocation):
        newest_file(location, "*", data_dir, data_dir / "drop")


def test_a_symlink_out_of_the_drop_area_is_refused(data_dir: Path) -> None:
    (data_dir / "drop" / "escape").symlink_to(data_dir / "audit")
    with pytest.raises(UnsafeSourceLocation, match="outside the drop area"):
        newest_file("drop/escape", "*", data_dir, data_dir / "drop")
    (data_dir / "drop" / "psga" / "psga_20261121.csv").symlink_to(data_dir / "audit" / "signing-key.pem")
    with pytest.raises(UnsafeSourceLocation, match="outside the drop area"):
        newest_file("drop/psga", "psga_*", data_dir, data_dir / "drop")


def test_a_file_source_inside_the_drop_area_is_read(data_dir: Path) -> None:
    for location in ("drop/psga", (data_dir / "drop" / "psga").as_uri()):
        export = newest_file(location, "psga_*", data_dir, data_dir / "drop")
        assert export is not None and export.data == b"a\n1\n"
    with pytest.raises(UnsafeSourceLocation, match="no DATASHARE_DROP_URL is set"):
        checked_file_url("s3://exchange/psga", data_dir, data_dir / "drop")  # it would be read with the platform's keys


def resolving_to(*addresses: str) -> Callable[..., list[Any]]:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in address], socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    return getaddrinfo


@pytest.mark.parametrize(
    ("host", "resolved", "reason"),
    [
        ("127.0.0.1", None, "loopback"),
        ("localhost", None, "loopback"),
        ("::1", None, "loopback"),
        ("::ffff:127.0.0.1", None, "loopback"),
        ("0.0.0.0", None, "unspecified"),
        ("169.254.169.254", None, "link-local"),
        ("fe80::1", None, "link-local"),
        ("fd00:ec2::254", None, "cloud metadata"),
        ("100.100.100.200", None, "cloud metadata"),
        ("metadata.google.internal", "10.1.2.3", "cloud metadata"),
        ("rebinding.example", ("10.1.2.3", "127.0.0.1"), "loopback"),  # any address refused refuses the name
    ],
)
def test_an_http_source_may_not_reach_this_host_or_metadata(
    host: str, resolved: str | tuple[str, ...] | None, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if resolved is not None:
        addresses = (resolved,) if isinstance(resolved, str) else resolved
        monkeypatch.setattr(source_safety.socket, "getaddrinfo", resolving_to(*addresses))
    with pytest.raises(UnsafeSourceLocation, match=reason):
        checked_address(host, 80, allowed_hosts=[])
    assert checked_address(host, 80, allowed_hosts=[host.upper()]) is None  # an operator may allow it


def test_private_addresses_stay_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_safety.socket, "getaddrinfo", resolving_to("10.20.30.40"))
    assert checked_address("cases.zsj.gov.internal", 443, allowed_hosts=[]) == "10.20.30.40"


@pytest.fixture
def servers() -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """Two local servers; the first's page links to the second's by another name (another origin). Each request is
    recorded."""
    seen: list[dict[str, Any]] = []
    ports: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = self.connection.getsockname()[1]
            seen.append({"port": port, "path": self.path, "host": self.headers.get("Host"),
                         "authorization": self.headers.get("Authorization")})  # fmt: skip
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()
                return
            following = f"http://localhost:{ports[1]}/more" if port == ports[0] else None
            body = json.dumps({"items": [{"port": port}], "next": following}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    started = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    for server in started:
        ports.append(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", seen
    for server in started:
        server.shutdown()
        server.server_close()


def test_a_local_server_is_reached_only_when_allowed(servers: tuple[str, str, list[dict[str, Any]]]) -> None:
    first, _, seen = servers
    with pytest.raises(UnsafeSourceLocation, match="loopback"):
        fetch_pages(f"{first}/cases")
    assert seen == []  # refused before connecting
    assert len(fetch_pages(f"{first}/cases", allowed_hosts=[*LOCAL, "localhost"]).data.splitlines()) == 2


def test_the_token_goes_to_the_declared_origin_only(servers: tuple[str, str, list[dict[str, Any]]]) -> None:
    first, _, seen = servers
    fetch_pages(f"{first}/cases", allowed_hosts=[*LOCAL, "localhost"], token="s3cret-token")
    assert [(request["path"], request["authorization"]) for request in seen] == [
        ("/cases", "Bearer s3cret-token"),
        ("/more", None),  # the next link leads to another origin: no credential there
    ]
    assert http_token_variable("zsj", "complaints-api") == "ZSJ_COMPLAINTS_API_TOKEN"


def test_next_links_and_redirects_are_checked_too(servers: tuple[str, str, list[dict[str, Any]]]) -> None:
    first, _, seen = servers
    with pytest.raises(UnsafeSourceLocation, match="localhost is a loopback address"):
        fetch_pages(f"{first}/cases", allowed_hosts=LOCAL)  # its next link names localhost, which is not allowed
    assert [request["path"] for request in seen] == ["/cases"]
    with pytest.raises(ExportNotReachable, match="302"):  # a redirect is not followed, wherever it leads
        fetch_pages(f"{first}/redirect", allowed_hosts=LOCAL)
    assert [request["path"] for request in seen] == ["/cases", "/redirect"]


def test_the_connection_goes_to_the_address_checked(
    servers: tuple[str, str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each name is resolved once, by the check; the request goes to the address checked (a second lookup could be
    answered with another: DNS rebinding) and keeps the name in its Host header."""
    first, _, seen = servers
    port = int(first.rsplit(":", 1)[1])
    real_getaddrinfo, names_looked_up = socket.getaddrinfo, []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host[0].isdigit():  # an address: the connection to the address checked
            return real_getaddrinfo(host, port, *args, **kwargs)
        names_looked_up.append(host)
        return resolving_to("127.0.0.1")(host, port)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(source_safety, "refusal", lambda address: None)  # as if 127.0.0.1 were a department's host
    export = fetch_pages(f"http://dept.example:{port}/cases")

    assert len(export.data.splitlines()) == 2
    assert names_looked_up == ["dept.example", "localhost"]  # the first page and the next link, once each
    assert [request["host"] for request in seen] == [f"dept.example:{port}", f"localhost:{seen[1]['port']}"]


@pytest.mark.parametrize("location", ["drop/%2e%2e/audit", "file:///data/drop/%2E%2E/audit", "drop/%2e./x"])
def test_an_encoded_dot_dot_is_refused_when_declared(location: str) -> None:
    from pydantic import ValidationError

    from catalog.departments.schemas import SourceSystemDeclaration

    with pytest.raises(ValidationError, match="is not valid for file_drop"):
        SourceSystemDeclaration(code="s", name="s", location=location)


def test_a_department_cannot_pull_another_departments_drop_folder(
    backend: str, database_factory: Any, tmp_path: Path, samples_dir: Path
) -> None:
    """zsj's source pointed at psga's drop folder (inside the drop area, but not zsj's part of it) is refused."""
    psga_folder = tmp_path / "data" / "drop" / "psga" / "population"
    psga_folder.mkdir(parents=True)
    shutil.copy(samples_dir / "psga_population_20261120.csv", psga_folder)
    source = {"access": "file_drop", "location": "drop/psga/population", "file_pattern": "*.csv"}
    with pytest.raises(UnsafeSourceLocation, match="outside the drop area"):
        pull_complaints_from(source, database_factory(backend), tmp_path)
