"""Where a source system may point, checked when its exports are pulled (issue 12).

A catalog is written by departments' stewards; a location is the platform reaching out on their word, so:

* a file source is read only inside the drop area (``DATASHARE_DROP_DIR``, default ``<data dir>/drop``): its
  folder and the file read, symlinks resolved, must lie inside it; ``file://`` URLs are local paths and follow the
  same rule; percent-encoding is refused outright (``%2e%2e`` is ``..`` to some readers). Object-store URLs
  (s3://, gs://, abfs://, az://) are other systems and stay allowed.
* an HTTP source may not reach this host (loopback, unspecified), link-local addresses, multicast or the clouds'
  metadata services, by address or by a name that resolves to one: private (RFC 1918) addresses stay allowed, as
  departments' systems live on intranets. Every address a name resolves to is checked and the connection goes to
  the address checked (no second lookup to rebind), for every request: pages, ``next`` links and any redirect.
  An operator lets a host through with ``DATASHARE_SOURCE_ALLOWED_HOSTS``, by the name or address written in URLs.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from catalog.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
OBJECT_STORE_SCHEMES = ("s3", "gs", "gcs", "abfs", "az")
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata.tencentyun.com"})
# Most clouds' metadata services are link-local (169.254.169.254: AWS, GCP, Azure, Huawei; 169.254.0.23: Tencent);
# these are not: AWS's over IPv6 (a unique-local address) and Alibaba Cloud's (in the shared 100.64/10 range).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(address) for address in ("fd00:ec2::254", "100.100.100.200"))


class UnsafeSourceLocation(DomainError):
    code = "unsafe_source_location"


def checked_file_url(location: str, data_dir: Path, drop_dir: Path) -> str:
    """The URL to read a file source from: an object-store URL as declared, else a local folder inside the drop
    area (a relative location is taken under the data folder)."""
    scheme = urlsplit(location).scheme if "://" in location else ""
    if scheme in OBJECT_STORE_SCHEMES:
        return location
    if scheme not in ("", "file"):
        raise UnsafeSourceLocation(f"a file source cannot be read from a {scheme}:// location")
    if "%" in location:
        raise UnsafeSourceLocation(f"the file location {location!r} is percent-encoded: write the path as it is")
    if scheme == "file" and not location.startswith("file:///"):
        raise UnsafeSourceLocation(f"the file location {location!r} names a host: write file:///path")
    folder = Path(location.removeprefix("file://")) if scheme else data_dir / location
    return check_inside_drop_area(folder, drop_dir).as_uri()


def check_inside_drop_area(path: Path | str, drop_dir: Path) -> Path:
    """The path with its symlinks resolved, if it lies inside the drop area."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(drop_dir.resolve()):
        raise UnsafeSourceLocation(f"{path} is outside the drop area {drop_dir}: file sources are read only there")
    return resolved


def refusal(address: IPAddress) -> str | None:
    """Why a source may not be reached at this address, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata service"
    checks = (("loopback", address.is_loopback), ("link-local", address.is_link_local),
              ("unspecified", address.is_unspecified), ("multicast", address.is_multicast))  # fmt: skip
    return next((f"a {kind} address" for kind, applies in checks if applies), None)


def checked_address(host: str, port: int, allowed_hosts: Collection[str]) -> str | None:
    """The address to connect to for ``host``: every address it resolves to must be allowed. None for a host the
    operator allowed (connected to as usual)."""
    if host.lower().rstrip(".") in {allowed.lower() for allowed in allowed_hosts}:
        return None
    if host.lower().rstrip(".") in METADATA_NAMES:
        raise UnsafeSourceLocation(f"{host} is a cloud metadata service; HTTP sources may not reach it")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise httpx.ConnectError(f"cannot resolve {host}: {error}") from None
    addresses = [ipaddress.ip_address(str(entry[4][0]).split("%", 1)[0]) for entry in found]
    for address in addresses:
        if (reason := refusal(address)) is not None:
            raise UnsafeSourceLocation(
                f"{host} is {reason} ({address}); HTTP sources may not reach it unless an operator allows the host "
                "in DATASHARE_SOURCE_ALLOWED_HOSTS"
            )
    return str(addresses[0])


class CheckedTransport(httpx.HTTPTransport):
    """Checks the host of every request and connects to the address checked, keeping the name for the Host header
    and for TLS (SNI and certificate)."""

    def __init__(self, allowed_hosts: Collection[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._allowed_hosts = tuple(allowed_hosts)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        address = checked_address(host, request.url.port or _default_port(request.url.scheme), self._allowed_hosts)
        if address is not None and address != host:
            request.url = request.url.copy_with(host=address)
            request.extensions = {**request.extensions, "sni_hostname": host}
        return super().handle_request(request)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
