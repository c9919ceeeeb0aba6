"""Overlapping a producer with its consumer."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def prefetched(items: Iterator[T], name: str = "prefetch") -> Generator[T, None, None]:
    """The items of an iterator, each next one produced in a background thread while the caller works on the
    current one (worth it when either side spends its time outside the GIL: Arrow, a socket, the database). Closing
    it (or its end) waits for the item being produced: ``items`` is then no longer in use."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        upcoming = pool.submit(next, items, None)
        while (item := upcoming.result()) is not None:
            upcoming = pool.submit(next, items, None)
            yield item
