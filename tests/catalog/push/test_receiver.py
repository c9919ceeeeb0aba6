"""The reference webhook receiver takes a notice signed with its secret and refuses one signed otherwise."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import httpx
import pytest

from catalog.notifications import senders
from catalog.push.receiver import handler
from catalog.settings import Settings


def test_the_receiver_checks_the_signature(capsys: pytest.CaptureFixture[str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler("right", None))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    settings = Settings(notification_allowed_hosts=["127.0.0.1"])
    try:
        senders.send_webhook(settings, url, "right", b'{"item":"PSGA-RK-0001","version":2}', 7)
        with pytest.raises(senders.DeliveryFailed, match="HTTP 401"):
            senders.send_webhook(settings, url, "wrong", b'{"item":"PSGA-RK-0001","version":3}', 8)
        assert httpx.post(url, content=b"{}").status_code == 401  # unsigned
    finally:
        server.shutdown()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '{"item": "PSGA-RK-0001", "version": 2}' and "bad signature" in lines[1]
