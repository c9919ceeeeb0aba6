"""The short-lived download link a webhook notice carries: ``/deliveries/{id}/data.csv?token=…``, valid for the one
delivery it names (its subscription, its version) until it expires. The token is ``<expiry>.<HMAC>`` under a key
derived from the platform secret; whoever holds it reads what the subscription grants of that version, masked and
scoped as any read, and the read is audited as the delivery's."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import urlencode

from catalog.errors import Forbidden

FORMATS = ("csv", "parquet")


class InvalidLink(Forbidden):
    code = "invalid_delivery_link"


def token(secret: str, delivery_id: int, expires: int) -> str:
    return f"{expires}.{_digest(secret, delivery_id, expires)}"


def url(public_url: str, secret: str, delivery_id: int, expires: int, file_format: str = "csv") -> str:
    query = urlencode({"token": token(secret, delivery_id, expires)})
    return f"{public_url.rstrip('/')}/deliveries/{delivery_id}/data.{file_format}?{query}"


def check(secret: str, delivery_id: int, sent: str, now: float | None = None) -> None:
    """InvalidLink unless ``sent`` is this delivery's token and has not expired (the same answer for both, so a
    guess learns nothing)."""
    expiry, _, digest = sent.partition(".")
    if not re.fullmatch(r"[0-9]{1,12}", expiry):
        raise InvalidLink("the link is not valid or has expired: the next delivery brings a new one")
    expected = _digest(secret, delivery_id, int(expiry)).encode()
    valid = hmac.compare_digest(digest.encode("utf-8", "replace"), expected)
    if not valid or int(expiry) <= (time.time() if now is None else now):
        raise InvalidLink("the link is not valid or has expired: the next delivery brings a new one")


def _digest(secret: str, delivery_id: int, expires: int) -> str:
    key = hmac.new(secret.encode(), b"datashare delivery links", hashlib.sha256).digest()
    return hmac.new(key, f"{delivery_id}.{expires}".encode(), hashlib.sha256).hexdigest()
