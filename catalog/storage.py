"""Object storage through fsspec (issue 16): what several machines share (the raw store, the drop area, the pipeline
manifest, file-drop deliveries) may live under s3:// (gs://, abfs://) URLs instead of local folders
(``DATASHARE_RAW_URL``, ``DATASHARE_DROP_URL``, ``DATASHARE_MANIFEST_URL``, ``DATASHARE_DELIVERY_FILE_ROOTS``).

Nothing partial is ever visible under a final name: an object is written whole, by one PUT or a multipart upload that
the store shows only once it is completed (an upload that fails is aborted).

Credentials never come from the catalog, nor from a URL: from the store library's own environment (for s3://,
botocore's: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, its config files, an instance role), or, inside an Airflow task, from
the Airflow connection ``DATASHARE_OBJECT_STORE_CONN_ID`` names (``using_connection``: login = access key id,
password = secret key, extra ``endpoint_url``, ``region_name``, ``aws_session_token``). Nothing here logs them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from catalog.settings import OBJECT_STORE_SCHEMES

# The store libraries' INFO lines ("Found credentials in environment variables", on every client) are not the
# platform's log: kept at WARNING wherever objects are reached (the DAG files' parse included).
STORE_LOGGERS = ("fsspec", "s3fs", "aiobotocore", "botocore")
_lock = threading.Lock()
_connection_options: dict[str, Any] = {}  # installed for the duration of an Airflow task (``using_connection``)


class ConnectionLike(Protocol):
    """What is read of an Airflow connection (``airflow.sdk.Connection``)."""

    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def is_url(location: Path | str) -> bool:
    """An object-store URL (s3://, gs:// ...), as opposed to a local path or file:// URL."""
    return isinstance(location, str) and location.partition("://")[0] in OBJECT_STORE_SCHEMES and "://" in location


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a URL (local path or file:// too) and the path within it."""
    filesystem, path = fsspec.core.url_to_fs(url, **_options(url))
    return filesystem, str(path)


def is_local(filesystem: AbstractFileSystem) -> bool:
    return isinstance(filesystem, LocalFileSystem)


def read_bytes(url: str) -> bytes:
    store, path = filesystem(url)
    return bytes(store.cat_file(path))


def put_whole(url: str, data: bytes, *, keep_existing: bool = False) -> bool:
    """The object written whole (one PUT, or a multipart upload completed at once); with ``keep_existing`` nothing is
    written when it is there already. Whether it was written."""
    store, path = filesystem(url)
    if keep_existing and store.exists(path):
        return False
    store.pipe_file(path, data)
    return True


def read_keeping_copy(url: str, copy: Path) -> tuple[bytes, bool]:
    """The object's bytes, kept in the local ``copy`` as well; when the store cannot be reached (not: the object is
    missing, FileNotFoundError), the copy's bytes instead. Whether they are the store's."""
    try:
        data = read_bytes(url)
    except FileNotFoundError:
        raise
    except failures():
        if not copy.exists():
            raise
        return copy.read_bytes(), False
    if not copy.exists() or copy.read_bytes() != data:
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_name(f".{copy.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(data)
        os.replace(partial, copy)
    return data, True


def write_whole(store: AbstractFileSystem, path: str, chunks: Iterable[bytes]) -> None:
    """Streamed into one object that appears only when complete: a multipart upload committed at the end, aborted
    (nothing left, nothing visible) if writing fails."""
    # _open: open() would also enlist the file in the (shared, cached) filesystem's transaction, kept there for ever.
    sink = store._open(path, "wb", autocommit=False)
    try:
        for chunk in chunks:
            sink.write(chunk)
        sink.close()
        sink.commit()
    except BaseException:
        sink.discard()
        sink.closed = True
        raise


def failures() -> tuple[type[BaseException], ...]:
    """What reaching a store may raise: OSError (s3fs's translation of the store's answers), ValueError, a missing
    fsspec package, and, once s3fs is loaded, botocore's own errors (an endpoint unreachable, no credentials)."""
    boto = sys.modules.get("botocore.exceptions")
    return (OSError, ValueError, ImportError, *((boto.BotoCoreError,) if boto is not None else ()))


def inside(url: str, folder: str) -> bool:
    """Whether an object-store URL is ``folder`` or lies under it."""
    url, folder = url.rstrip("/"), folder.rstrip("/")
    return url == folder or url.startswith(folder + "/")


def parent(url: str) -> str:
    """The folder an object-store URL lies in (a bucket is its own)."""
    scheme, _, rest = url.rstrip("/").partition("://")
    return f"{scheme}://{rest.rsplit('/', 1)[0]}" if "/" in rest else url.rstrip("/")


def connection_options(connection: ConnectionLike) -> dict[str, Any]:
    """s3fs's options from an Airflow connection in the Amazon provider's shape (login, password, extra)."""
    extra = connection.extra_dejson or {}
    options: dict[str, Any] = {}
    if connection.login:
        options["key"] = connection.login
    if connection.password:
        options["secret"] = connection.password
    if token := extra.get("aws_session_token"):
        options["token"] = token
    if endpoint := extra.get("endpoint_url"):
        options["endpoint_url"] = endpoint
    if region := extra.get("region_name"):
        options["client_kwargs"] = {"region_name": region}
    return options


@contextmanager
def using_connection(conn_id: str | None) -> Iterator[None]:
    """Inside an Airflow task: s3:// is reached with the credentials of this Airflow connection (none: the
    environment's) until the block ends. Called by the DAG tasks only (the Airflow edge): it imports Airflow's SDK."""
    if not conn_id:
        yield
        return
    from airflow.sdk import Connection  # the only use of Airflow here, by the DAG tasks

    _install(connection_options(Connection.get(conn_id)))
    try:
        yield
    finally:
        _install({})


@contextmanager
def using_options(options: Mapping[str, Any]) -> Iterator[None]:
    """s3:// reached with these options until the block ends (what ``using_connection`` installs)."""
    _install(dict(options))
    try:
        yield
    finally:
        _install({})


def _install(options: dict[str, Any]) -> None:
    """Process-wide rather than per context: the raw file is written by a thread of its own."""
    global _connection_options
    with _lock:
        _connection_options = options


def _options(url: str) -> dict[str, Any]:
    if url.partition("://")[0] != "s3":
        return {}
    # No listing is trusted from memory: other machines add exports and objects between two looks.
    return {**_connection_options, "use_listings_cache": False}


def _quiet_store_logging() -> None:
    for name in STORE_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


_quiet_store_logging()
