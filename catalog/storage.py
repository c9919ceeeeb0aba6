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
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
log = logging.getLogger(__name__)
# One spelling per store: what fsspec reads as the same store compares as the same.
SCHEME_ALIASES = {"s3": "s3", "gs": "gs", "gcs": "gs", "abfs": "abfs", "az": "abfs"}
BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{0,254}")  # after lowercasing: stores take bucket names in any case
# A read that must end soon (the manifest, at a DAG file's parse): one attempt, short connect and read timeouts, one
# GET (no HEAD first). botocore's client ``max_attempts`` counts retries; ``total_max_attempts`` counts attempts.
# s3fs's own retries (``retries``, a class attribute) are set on that filesystem, its options kept apart in fsspec's
# cache by these.
QUICK_S3_OPTIONS: dict[str, Any] = {
    "config_kwargs": {"connect_timeout": 2, "read_timeout": 5, "retries": {"total_max_attempts": 1}},
    "max_concurrency": 1,
}


class ConnectionLike(Protocol):
    """What is read of an Airflow connection (``airflow.sdk.Connection``)."""

    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def is_url(location: Path | str) -> bool:
    """An object-store URL (s3://, gs:// ...), as opposed to a local path or file:// URL."""
    return isinstance(location, str) and location.partition("://")[0] in OBJECT_STORE_SCHEMES and "://" in location


class UnsafeURL(ValueError):
    """An object-store URL refused: not in one plain, canonical spelling."""


class CredentialsInURL(UnsafeURL):
    """Its message never repeats the URL: it would be a secret in a log."""


@dataclass(frozen=True)
class ObjectURL:
    """An object-store URL in its canonical form: one scheme per store, the bucket in lower case, the key's
    segments. Compared segment-wise, never as strings."""

    scheme: str
    bucket: str
    key: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return "/".join((f"{self.scheme}://{self.bucket}", *self.key))

    def within(self, folder: ObjectURL) -> bool:
        """This URL is ``folder`` or lies under it."""
        same_bucket = (self.scheme, self.bucket) == (folder.scheme, folder.bucket)
        return same_bucket and self.key[: len(folder.key)] == folder.key

    def overlaps(self, other: ObjectURL) -> bool:
        return self.within(other) or other.within(self)

    def child(self, segment: str) -> ObjectURL:
        return canonical(f"{self.url}/{segment}")

    def parent(self) -> ObjectURL:
        """The folder it lies in (a bucket is its own)."""
        return ObjectURL(self.scheme, self.bucket, self.key[:-1])


def canonical(url: str) -> ObjectURL:
    """The one canonical form every check compares (sources, delivery roots, settings). Refused: no bucket (``s3:///x``
    is bucket ``x`` to s3fs), credentials, ``#``, ``?``, wildcards, backslashes, percent-encoding, control characters,
    empty, ``.`` or ``..`` segments. A trailing ``/`` is dropped."""
    spelled, separator, rest = url.partition("://")
    scheme = SCHEME_ALIASES.get(spelled.lower()) if separator else None
    if scheme is None:
        raise UnsafeURL(f"not an object-store URL ({', '.join(SCHEME_ALIASES)}://bucket/...)")
    if "@" in rest.split("/", 1)[0]:
        raise CredentialsInURL("an object-store location carries no credentials: they come from the environment")
    _refuse_marks(rest)
    bucket, *key = rest.removesuffix("/").split("/")
    if not BUCKET.fullmatch(bucket.lower()):
        raise UnsafeURL("an object-store URL names its bucket at once (scheme://bucket/...), in letters, digits, . - _")
    if any(segment in ("", ".", "..") for segment in key):
        raise UnsafeURL("an object-store URL has no empty, '.' or '..' segments")
    return ObjectURL(scheme, bucket.lower(), tuple(key))


def _refuse_marks(rest: str) -> None:
    if "%" in rest:
        raise UnsafeURL("an object-store URL has no percent-encoding: write it as it is")
    if any(mark in rest for mark in "*?[]"):
        raise UnsafeURL("an object-store URL has no wildcard or query ('*', '?', '[', ']')")
    if "#" in rest or "\\" in rest:
        raise UnsafeURL("an object-store URL has no '#' or backslash")
    if any(ord(character) < 32 or ord(character) == 127 for character in rest):
        raise UnsafeURL("an object-store URL has no control characters")


def filesystem(url: str, **options: Any) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of a URL (local path or file:// too) and the path within it."""
    filesystem, path = fsspec.core.url_to_fs(url, **_options(url), **options)
    return filesystem, str(path)


def is_local(filesystem: AbstractFileSystem) -> bool:
    return isinstance(filesystem, LocalFileSystem)


def read_bytes(url: str, *, quick: bool = False) -> bytes:
    """The object's bytes; ``quick``: an s3:// read that ends within seconds (``QUICK_S3_OPTIONS``)."""
    quick = quick and url.partition("://")[0] == "s3"
    store, path = filesystem(url, **(QUICK_S3_OPTIONS if quick else {}))
    if quick:
        store.retries = 1  # type: ignore[attr-defined]  # s3fs.S3FileSystem's: one attempt
    return bytes(store.cat_file(path))


def put_whole(url: str, data: bytes, *, keep_existing: bool = False) -> bool:
    """The object written whole (one PUT, or a multipart upload completed at once); with ``keep_existing`` nothing is
    written when it is there already. Whether it was written."""
    store, path = filesystem(url)
    if keep_existing and store.exists(path):
        return False
    store.pipe_file(path, data)
    return True


def read_keeping_copy(url: str, copy_name: str) -> tuple[bytes, bool]:
    """The object's bytes, read quickly (``QUICK_S3_OPTIONS``) and kept in the local copy ``copy_name`` (in this
    user's ``private_folder``) as well; when the store cannot be reached (not: the object is missing,
    FileNotFoundError), the copy's bytes instead. Whether they are the store's. A copy that cannot be kept is said in
    the log; it never hides what was read."""
    try:
        data = read_bytes(url, quick=True)
    except FileNotFoundError:
        raise
    except failures() as error:
        try:
            return (private_folder() / copy_name).read_bytes(), False
        except OSError:
            raise error from None
    _keep_copy(copy_name, data)
    return data, True


def private_folder() -> Path:
    """This user's folder for local copies: ``<temp>/datashare-<uid>``, made with mode 0700, used only if it is a
    directory (not a symlink) owned by this user that no one else can reach."""
    folder = private_folder_path()
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{folder} is not a private folder of this user's (mode 0700): no copy is kept there")
    return folder


def private_folder_path() -> Path:
    """Where ``private_folder`` is (unchecked: for messages)."""
    return Path(tempfile.gettempdir()) / f"datashare-{os.getuid()}"


def _keep_copy(copy_name: str, data: bytes) -> None:
    try:
        copy = private_folder() / copy_name
        if copy.exists() and copy.read_bytes() == data:
            return
        descriptor, partial = tempfile.mkstemp(dir=copy.parent, prefix=f".{copy_name}.", suffix=".partial")
        try:
            with os.fdopen(descriptor, "wb") as sink:
                sink.write(data)
            os.replace(partial, copy)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    except OSError as error:
        log.warning("the local copy %s of an object cannot be kept (%s); what was read serves", copy_name, error)


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
    """Whether an object-store URL is ``folder`` or lies under it, compared in canonical form (``canonical``)."""
    return canonical(url).within(canonical(folder))


def parent(url: str) -> str:
    """The folder an object-store URL lies in (a bucket is its own), in canonical form."""
    return canonical(url).parent().url


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
