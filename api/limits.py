"""The API's abuse limits, counted in fixed windows by the ``limits`` library.

* Failed sign-ins, per user name and per client address: after 10 in 15 minutes, 20 in an hour or 30 in a day, a
  sign-in is refused (429, ``Retry-After``) before any password is checked, the right one too, until that window
  ends. Refused attempts are not failures; failures after a lockout lead to the longer ones.
* Bad credentials, per client address: after 30 in a minute, a credential the API process does not remember is
  refused before the database is asked whose it is (one it remembers still works).
* Anonymous requests, per client address, sign-ins included: 300 a minute.
* Each principal's requests: 100 per 2 seconds, counted in the API process (no round trip on the hot path; N
  processes allow N times it).

The first three are shared by the API processes through the store ``DATASHARE_RATE_LIMIT_STORAGE`` names (Redis in
production); with ``memory://`` they are counted in the process, in stores that keep at most ``MAX_KEYS`` counters
each (the oldest dropped first: limits' own MemoryStorage keeps every key until its window ends). An IPv6 client is
counted by its /64, which a single host is commonly given whole.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from api.problems import ApiProblem

MAX_KEYS = 50_000  # per in-process store (nine of them): about 13 MB each when full
KEY_PREFIX = "datashare-limits"
REDIS_TIMEOUT_SECONDS = 1.0  # a store that does not answer refuses the request rather than holding it
Clock = Callable[[], float]


@dataclass(frozen=True)
class Rates:
    """The limits, in limits' notation."""

    login_failures: str = "10/15 minutes; 20/hour; 30/day"  # per user name, and per client address
    bad_credentials: str = "30/minute"  # per client address
    anonymous: str = "300/minute"  # per client address
    per_principal: str = "100/2 seconds"  # per principal, per API process


class _Window:
    __slots__ = ("count", "ends")

    def __init__(self, ends: float) -> None:
        self.count, self.ends = 0, ends


class BoundedMemoryStorage(Storage):
    """Fixed-window counters in this process, at most ``max_keys`` of them: a new window drops the expired ones
    and, when full, those whose windows began first (no sweeping thread). Meant for windows of one length, so
    that the first to begin is the first to end."""

    STORAGE_SCHEME = None  # built directly, never registered over limits' own memory:// scheme

    def __init__(self, max_keys: int = MAX_KEYS, clock: Clock = time.time) -> None:
        super().__init__()
        self.max_keys, self._clock = max_keys, clock
        self._windows: dict[str, _Window] = {}  # in the order their windows began
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def __len__(self) -> int:
        return len(self._windows)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window.ends <= now:
                self._windows.pop(key, None)
                self._make_room(now)
                window = self._windows[key] = _Window(now + expiry)
            window.count += amount
            return window.count

    def _make_room(self, now: float) -> None:
        while self._windows:
            oldest = next(iter(self._windows))
            if self._windows[oldest].ends > now and len(self._windows) < self.max_keys:
                return
            del self._windows[oldest]

    def get(self, key: str) -> int:
        window = self._windows.get(key)
        return window.count if window is not None and window.ends > self._clock() else 0

    def get_expiry(self, key: str) -> float:
        window = self._windows.get(key)
        now = self._clock()
        return window.ends if window is not None and window.ends > now else now

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            count = len(self._windows)
            self._windows.clear()
        return count

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


def shared_storage(uri: str, key_prefix: str = KEY_PREFIX) -> Storage:
    """The store of limits shared by API processes (limits' Redis storage, for one), its errors wrapped."""
    options: dict[str, float | str | bool] = {"wrap_exceptions": True}
    if uri.startswith(("redis", "rediss", "valkey")):
        options |= {"key_prefix": key_prefix, "socket_timeout": REDIS_TIMEOUT_SECONDS,
                    "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}  # fmt: skip
    storage = storage_from_string(uri, **options)
    assert isinstance(storage, Storage), f"{uri}: an asynchronous store is not supported"
    return storage


@lru_cache(maxsize=10_000)  # parsing an IPv6 address costs 20 µs: more than the rest of a remembered caller's check
def client_key(host: str | None) -> str:
    """What a client is counted by: its IPv4 address, or its IPv6 /64."""
    if host is None:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address (a test client's name)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@contextmanager
def _store_reachable() -> Iterator[None]:
    try:
        yield
    except StorageError:
        raise ApiProblem(503, "limits_unavailable", "the rate limit store cannot be reached; try again shortly",
                         {"Retry-After": "5"}) from None  # fmt: skip


@dataclass(frozen=True)
class _Limit:
    """One rate over one store, for one kind of key (a principal, a client address, a user name)."""

    rate: RateLimitItem
    limiter: FixedWindowRateLimiter
    kind: str
    clock: Clock

    def hit(self, key: str) -> bool:
        return self.limiter.hit(self.rate, self.kind, key)

    def allows(self, key: str) -> bool:
        return self.limiter.test(self.rate, self.kind, key)

    def clear(self, key: str) -> None:
        self.limiter.clear(self.rate, self.kind, key)

    def wait(self, key: str) -> int:
        """Seconds until the current window of ``key`` ends."""
        reset_at = self.limiter.get_window_stats(self.rate, self.kind, key).reset_time
        return max(1, math.ceil(reset_at - self.clock()))


class Limits:
    """Every abuse limit of an API process. Methods that count in the shared store may wait on it (Redis): called
    from the event loop only when ``in_process``."""

    def __init__(
        self, storage_uri: str = "memory://", rates: Rates | None = None, clock: Clock = time.time,
        key_prefix: str = KEY_PREFIX,
    ) -> None:  # fmt: skip
        rates = rates or Rates()
        self.in_process = storage_uri.startswith("memory://")
        remote = None if self.in_process else shared_storage(storage_uri, key_prefix)

        def limit(rate: str | RateLimitItem, kind: str, shared: bool = True) -> _Limit:
            """In process, each limit has a store of its own: its windows are of one length."""
            store = remote if remote is not None and shared else BoundedMemoryStorage(clock=clock)
            return _Limit(parse(rate) if isinstance(rate, str) else rate, FixedWindowRateLimiter(store), kind, clock)

        self._per_principal = limit(rates.per_principal, "principal", shared=False)
        self._anonymous = limit(rates.anonymous, "anonymous")
        self._bad_credentials = limit(rates.bad_credentials, "bad-credentials")
        tiers = parse_many(rates.login_failures)
        self._user_logins = [limit(tier, "login-user") for tier in tiers]
        self._address_logins = [limit(tier, "login-address") for tier in tiers]

    def principal_request(self, subject: str) -> None:
        """Count a signed-in principal's request (in this process); 429 past its rate."""
        if not self._per_principal.hit(subject):
            raise _too_many("rate_limited", "too many requests; slow down", self._per_principal.wait(subject))

    def anonymous_request(self, client: str) -> None:
        """Count an anonymous request (a sign-in too) from a client; 429 past its rate."""
        with _store_reachable():
            if not self._anonymous.hit(client):
                raise _too_many("rate_limited", "too many requests from this address; slow down",
                                self._anonymous.wait(client))  # fmt: skip

    def before_credential_look_up(self, client: str) -> None:
        """429 if this client sent too many bad credentials lately: checked before the database is asked."""
        with _store_reachable():
            if not self._bad_credentials.allows(client):
                raise _too_many("credentials_throttled", "too many bad credentials from this address",
                                self._bad_credentials.wait(client))  # fmt: skip

    def credential_failed(self, client: str) -> None:
        with _store_reachable():
            self._bad_credentials.hit(client)

    def login_lockout(self, username: str, client: str) -> int:
        """Seconds until a sign-in as ``username`` from ``client`` may be tried again; 0 if it may now."""
        with _store_reachable():
            waits = [limit.wait(key) for limit, key in self._login_counts(username, client) if not limit.allows(key)]
        return max(waits, default=0)

    def login_failed(self, username: str, client: str) -> None:
        with _store_reachable():
            for limit, key in self._login_counts(username, client):
                limit.hit(key)

    def login_succeeded(self, username: str) -> None:
        """The user's own failures are forgotten (the client address's are not)."""
        with _store_reachable():
            for limit in self._user_logins:
                limit.clear(username)

    def _login_counts(self, username: str, client: str) -> list[tuple[_Limit, str]]:
        return [(limit, username) for limit in self._user_logins] + [(limit, client) for limit in self._address_logins]


def _too_many(code: str, detail: str, wait: int) -> ApiProblem:
    return ApiProblem(429, code, f"{detail}; try again in {wait} s", {"Retry-After": str(wait)})
