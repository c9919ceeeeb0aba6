"""A reference receiver of delivery webhooks, for a department trying its integration (and the README's session):
``python -m catalog.push.receiver --port 9100 --secret-variable ZSJ_HOOK_SECRET``. It checks each notice's signature
and timestamp as a receiver must (``catalog.notifications.senders.verify_signature``), answers 401 to anything else,
prints the notice as one JSON line, and with ``--download DIR`` fetches the version through the notice's CSV link."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from catalog.notifications.senders import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

MAX_BODY = 1 << 20


def handler(secret: str, download: Path | None) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY))
            signed, stamp = self.headers.get(SIGNATURE_HEADER, ""), self.headers.get(TIMESTAMP_HEADER, "")
            if length > MAX_BODY or not verify_signature(secret, stamp, body, signed):
                self.send_response(401)
                self.end_headers()
                print(json.dumps({"refused": "bad signature or timestamp"}), flush=True)
                return
            self.send_response(204)
            self.end_headers()
            notice: dict[str, Any] = json.loads(body)
            if download is not None:
                notice["saved"] = _save(notice, download)
            print(json.dumps(notice, ensure_ascii=False), flush=True)

        def log_message(self, *args: Any) -> None:  # one JSON line per notice is the output
            pass

    return Receiver


def _save(notice: dict[str, Any], folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{notice['item']}-v{notice['version']}.csv"
    with urllib.request.urlopen(notice["download"]["csv"], timeout=60) as response:
        target.write_bytes(response.read())
    return str(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--secret-variable", required=True, help="The environment variable holding the secret.")
    parser.add_argument("--download", type=Path, help="Save each delivered version's CSV in this folder.")
    args = parser.parse_args(argv)
    secret = os.environ.get(args.secret_variable, "")
    if not secret:
        sys.exit(f"{args.secret_variable} is not set")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(secret, args.download))
    print(json.dumps({"listening": f"http://127.0.0.1:{args.port}/"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
