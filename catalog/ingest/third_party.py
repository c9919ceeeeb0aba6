"""How ingestion loads and silences the libraries it runs on: Great Expectations without the parts it never uses
at load time, what lives as long as the process loaded without the garbage collector walking it, and third-party
loggers quiet.

``import great_expectations`` took 3.1 s here, a fixed cost of every run whatever the export's size. Most of it
was scipy.stats and altair, which GX imports at load time for expectations and charts this platform never uses
(KL divergence, Kolmogorov-Smirnov): they are put off until something touches them, then load as usual. The rest
(about 1.3 s here) is GX's own: its pydantic v1 models and registries, loaded once per process; with the garbage
collector kept out of the load and the models' fields copied lean, it is 0.7 s.

GX logs thousands of records (its registries as it loads, its validations), enough to bury the one line an
operator needs in an Airflow task log; ingestion keeps third-party loggers at WARNING and above.
"""

from __future__ import annotations

import copy
import functools
import gc
import importlib
import logging
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Loggers ingestion keeps at WARNING: Great Expectations and what it, pandas, fsspec and the HTTP sources run on.
THIRD_PARTY_LOGGERS = (
    "great_expectations",
    "fsspec",
    "s3fs",
    "aiobotocore",
    "botocore",
    "urllib3",
    "requests",
    "httpx",
    "httpcore",
    "tzlocal",
    "numexpr",
    "numba",
    "matplotlib",
    "filelock",
    "posthog",
    "asyncio",
    "casbin",  # its enforcer prints its model and policy at INFO whenever one is made
)
# Imported by GX when it loads, used only by expectations and renderers that ingestion never runs (KL divergence and
# KS tests, charts, JSON Schema matching, Markdown pages).
PUT_OFF_UNTIL_USED = ("scipy.stats", "altair", "jsonschema", "mistune")


def quiet_third_party_logging() -> None:
    """Keep third-party loggers at WARNING or above (a level set higher stays) and GX's analytics switch off (its
    progress bars are off on the context that validates: quality.py). Ingestion's entry points call it first (GX
    logs while it loads), the loader again after: GX sets a logger of its own to INFO as it loads."""
    for name in THIRD_PARTY_LOGGERS + _their_loggers_with_a_level():
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _their_loggers_with_a_level() -> tuple[str, ...]:
    prefixes = tuple(f"{name}." for name in THIRD_PARTY_LOGGERS)
    existing = list(logging.Logger.manager.loggerDict.items())
    return tuple(
        name
        for name, logger in existing
        if name.startswith(prefixes) and isinstance(logger, logging.Logger) and logger.level
    )


@functools.cache
def load_great_expectations() -> Any:
    """The ``great_expectations`` package, loaded once per process with its unused heavy imports put off."""
    quiet_third_party_logging()
    for name in PUT_OFF_UNTIL_USED:
        if name not in sys.modules:
            sys.modules[name] = _PutOff(name)
    with loading_for_good(), _pydantic_v1_fields_copied_lean():
        import great_expectations

    quiet_third_party_logging()
    return great_expectations


@contextmanager
def loading_for_good() -> Iterator[None]:
    """Loads what lives as long as the process (modules, their classes and registries) without Python's cyclic
    garbage collector walking it: the collector is paused while loading, and what exists then is frozen out of its
    later passes (``gc.freeze``).

    Loading Great Expectations and the platform makes about a million objects; the collections their allocations
    set off walk all of them again and again and free next to nothing (24 objects in a measured run): a quarter of a
    100-row run's wall time here (bench/run_cost_bench.py). A frozen object is never collected, so a cycle of them
    that becomes garbage later stays: only load-once code (imports, caches filled once per process) runs in here."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


@contextmanager
def _pydantic_v1_fields_copied_lean() -> Iterator[None]:
    """GX's models are pydantic v1 models, and pydantic v1 deep-copies every field of a base class into each
    subclass it makes; ``copy.deepcopy`` rebuilds even the fields' immutable parts (typing constructs, validators)
    through ``__reduce_ex__``: 0.2 s of GX's load here. While GX loads, a field is copied slot by slot with those
    parts shared, everything else deep-copied as before."""
    from pydantic.v1.class_validators import Validator
    from pydantic.v1.fields import DeferredType, FieldInfo, ModelField

    shared = (type, types.FunctionType, types.GenericAlias, Validator, DeferredType, str, int, float, bool)
    kinds = (ModelField, FieldInfo)
    slots: dict[type, tuple[str, ...]] = {}

    def lean_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        kind = type(self)
        clone = object.__new__(kind)
        memo[id(self)] = clone
        if kind not in slots:
            slots[kind] = tuple(slot for base in kind.__mro__ for slot in vars(base).get("__slots__", ()))
        for slot in slots[kind]:
            value = getattr(self, slot, _ABSENT)
            if value is _ABSENT:
                continue
            if not (value is None or isinstance(value, shared) or type(value).__module__ == "typing"):
                value = copy.deepcopy(value, memo)
            object.__setattr__(clone, slot, value)
        return clone

    if any(COPY_HOOK in vars(kind) for kind in kinds):  # pydantic's own, in a later release: keep it
        yield
        return
    for kind in kinds:
        setattr(kind, COPY_HOOK, lean_deepcopy)
    try:
        yield
    finally:
        for kind in kinds:
            delattr(kind, COPY_HOOK)


_ABSENT = object()
COPY_HOOK = "__deepcopy__"


# What tools ask every module in sys.modules for (inspect.getmodule, warnings, coverage): no reason to load it.
PROBES = frozenset({"__file__", "__cached__"})


class _PutOff(types.ModuleType):
    """Stands in for a module until one of its attributes is asked for: then it imports the module and becomes it
    (its namespace copied in, so whoever holds this object sees the real module)."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute in PROBES:
            raise AttributeError(attribute)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, attribute)
