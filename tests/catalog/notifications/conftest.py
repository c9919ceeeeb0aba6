"""Real servers for the notification tests, each on a free local port the test starts and stops: an SMTP server
(aiosmtpd) that keeps what it receives, and an HTTP server that keeps the webhooks posted to it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from catalog.access import service as access
from tests.catalog.helpers import import_demo

PASSWORD = "correct horse battery staple"
PEOPLE = {  # username: (department, role); each with <username>@example.gov.cn
    "psga-steward": ("psga", "steward"),
    "psga-user": ("psga", "user"),
    "zsj-steward": ("zsj", "steward"),
    "zsj-user": ("zsj", "user"),
    "wjj-user": ("wjj", "user"),
    "officer": ("zsj", "data_officer"),
    "ops": ("zsj", "ops"),
}


def add_people(session: Session) -> None:
    """The demo catalog and a person per role, each with an e-mail address."""
    import_demo(session)
    for username, (department, role) in PEOPLE.items():
        user = access.create_user(session, department, username, username, PASSWORD, [role])
        user.email = f"{username}@example.gov.cn"
    session.flush()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received; ``refuse`` makes it answer every message with a temporary failure."""

    port: int
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    refuse: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@dataclass
class Posted:
    headers: dict[str, str]
    body: bytes


class WebhookServer:
    """An HTTP server on a port of its own, started and stopped at will (to be down, then up)."""

    def __init__(self, port: int | None = None, status: int = 204) -> None:
        self.port = port or free_port()
        self.status = status
        self.posted: list[Posted] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/datashare"

    def start(self) -> WebhookServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.posted.append(Posted({key.lower(): value for key, value in self.headers.items()}, body))
                self.send_response(owner.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.stop()
