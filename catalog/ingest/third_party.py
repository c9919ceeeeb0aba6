"""How ingestion loads and silences the libraries it runs on: Great Expectations without the parts it never uses
at load time, and third-party loggers quiet.

``import great_expectations`` took 3.1 s here, a fixed cost of every run whatever the export's size. Most of it
was scipy.stats and altair, which GX imports at load time for expectations and charts this platform never uses
(KL divergence, Kolmogorov-Smirnov): they are put off until something touches them, then load as usual. The rest
(about 1 s here) is GX's own: its pydantic models and registries, loaded once per process.

GX logs thousands of records (its registries as it loads, its validations), enough to bury the one line an
operator needs in an Airflow task log; ingestion keeps third-party loggers at WARNING and above.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import types
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
    import great_expectations

    quiet_third_party_logging()
    return great_expectations


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
