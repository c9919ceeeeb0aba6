"""Where a source system may point, checked when its exports are pulled (issue 12).

A catalog is written by departments' stewards; a location is the platform reaching out on their word, so:

* a file source is read only inside the drop area (``DATASHARE_DROP_DIR``, default ``<data dir>/drop``): its
  folder and the file read, symlinks resolved, must lie inside it; ``file://`` URLs are local paths and follow the
  same rule; percent-encoding is refused outright (``%2e%2e`` is ``..`` to some readers). With the drop area on
  object storage (``DATASHARE_DROP_URL``) a source reads only there: its URL must lie in the department's part of it
  (a relative location is taken under the drop URL's parent), never a local folder. With a local drop area, no
  object-store URL is read at all: it would be read with the platform's credentials. An object-store URL is compared
  in its canonical form (``storage.canonical``: no empty bucket, credentials, wildcards, ``#``, ``?``, empty, ``.``
  or ``..`` segments, percent-encoding; one scheme per store; segment-wise), and never reaches the platform's own
  stores (the raw exports, the pipeline manifest, the outbound file drops). A file pattern names files: no ``/``,
  ``\\`` or ``..``.
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

from catalog import storage
from catalog.errors import DomainError
from catalog.settings import OBJECT_STORE_SCHEMES, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata.tencentyun.com"})
# Most clouds' metadata services are link-local (169.254.169.254: AWS, GCP, Azure, Huawei; 169.254.0.23: Tencent);
# these are not: AWS's over IPv6 (a unique-local address) and Alibaba Cloud's (in the shared 100.64/10 range).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(address) for address in ("fd00:ec2::254", "100.100.100.200"))


class UnsafeSourceLocation(DomainError):
    code = "unsafe_source_location"


def department_drop_area(settings: Settings, department: str) -> tuple[Path | str, Path | str]:
    """What a relative location is taken under, and the department's own part of the drop area: a department's
    sources never read another department's exports."""
    if isinstance(area := settings.drop_area, str):
        drop = _canonical(area)
        return drop.parent().url, drop.child(department).url
    return settings.resolved_data_dir, area / department


def platform_stores(settings: Settings) -> tuple[str, ...]:
    """The platform's own objects, which no source may read: raw exports, the pipeline manifest, outbound drops."""
    return tuple(url for url in (settings.raw_url, settings.manifest_url, *settings.delivery_file_roots) if url)


def checked_file_url(
    location: str, data_dir: Path | str, drop_dir: Path | str, platform_stores: Collection[str] = ()
) -> str:
    """The URL to read a file source from. With a local drop area (``drop_dir`` a path): a local folder inside it (a
    relative location is taken under the data folder); never object storage, which would be read with the
    platform's credentials. With the drop area on object storage (``drop_dir`` its department's URL, ``data_dir`` the
    URL relative locations are taken under): a URL inside it, in canonical form (``storage.canonical``)."""
    scheme = urlsplit(location).scheme.lower() if "://" in location else ""
    if isinstance(drop_dir, str):
        if scheme not in ("", *OBJECT_STORE_SCHEMES) or location.startswith(("/", "\\")):
            raise UnsafeSourceLocation(f"the drop area is {drop_dir}: a file source is read there, not at {location}")
        url = location if scheme else f"{str(data_dir).rstrip('/')}/{location}"
        return _checked_object_url(url, platform_stores, inside=drop_dir)
    if scheme in OBJECT_STORE_SCHEMES:
        _canonical(location)  # credentials in it are refused without being repeated
        raise UnsafeSourceLocation(f"{location} is on object storage, which file sources read only inside the "
                                   "department's part of the drop area on object storage (DATASHARE_DROP_URL), and "
                                   "no DATASHARE_DROP_URL is set: the drop area is a local folder")  # fmt: skip
    if scheme not in ("", "file"):
        raise UnsafeSourceLocation(f"a file source cannot be read from a {scheme}:// location")
    if "%" in location:
        raise UnsafeSourceLocation(f"the file location {location!r} is percent-encoded: write the path as it is")
    if scheme == "file" and not location.startswith("file:///"):
        raise UnsafeSourceLocation(f"the file location {location!r} names a host: write file:///path")
    folder = Path(location.removeprefix("file://")) if scheme else Path(data_dir) / location
    return check_inside_drop_area(folder, drop_dir).as_uri()


def checked_file_pattern(pattern: str | None) -> str:
    """A file source's pattern names files in its folder: no folders (``/``, ``\\``), no ``..``."""
    if pattern is not None and any(mark in pattern for mark in ("/", "\\", "..")):
        raise UnsafeSourceLocation(f"the file pattern {pattern!r} names files in the folder: no /, \\ or '..'")
    return pattern or "*"


def _canonical(url: str) -> storage.ObjectURL:
    try:
        return storage.canonical(url)
    except storage.CredentialsInURL as error:
        raise UnsafeSourceLocation(str(error)) from None
    except storage.UnsafeURL as error:
        raise UnsafeSourceLocation(f"the file location {url!r}: {error} (file_pattern chooses the files)") from None


def _checked_object_url(url: str, platform_stores: Collection[str], inside: str) -> str:
    checked, drop = _canonical(url), _canonical(inside)
    if not checked.within(drop):
        raise UnsafeSourceLocation(f"{url} is outside the drop area {inside}: file sources are read only there")
    for store in platform_stores:
        if checked.overlaps(_canonical(store)):
            raise UnsafeSourceLocation(f"{url} reaches the platform's own store {store}: a source cannot read it")
    return checked.url


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
