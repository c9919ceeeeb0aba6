"""Access log lines without personal data. uvicorn logs each request's path with its query string, where a filter
may carry a resident ID (``?filter=公民身份号码:4403…``): the API's access log keeps the path, the query's parameter
names and a filter's field name, never a value (``?filter=公民身份号码:*&limit=*``). A run of 11 or more digits (a
phone, resident ID or bank card number; no row id is that long) is hidden wherever it stands: in the path, or
where a name belongs. The filter is installed by ``create_app``, so the API logs this way however it is started."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote_plus

from catalog.logsafe import without_values

ACCESS_LOGGER, ERROR_LOGGER = "uvicorn.access", "uvicorn.error"
HIDDEN = "*"
FILTER_PARAMETER, FILTER_SEPARATOR = "filter", ":"  # the data routes' `filter=name:value` (api/routers/data.py)
_NUMBER_LIKE_AN_IDENTIFIER = re.compile(r"\d{11,}")
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}$")
_UNSAFE_IN_A_LOG_LINE = ' "%&='


def loggable_target(target: str) -> str:
    """A request's path and query as logged: ``/items/X/data?filter=姓名:*&limit=*``."""
    path, separator, query = target.partition("?")
    path = _NUMBER_LIKE_AN_IDENTIFIER.sub(HIDDEN, path)
    return f"{path}?{loggable_query(query)}" if separator else path


def loggable_query(query: str) -> str:
    """Parameter names, and a filter's field name, never a value."""
    parameters = []
    for parameter in query.split("&") if query else ():
        name, has_value, value = parameter.partition("=")
        name = _parameter_name(unquote_plus(name))
        if not has_value:
            parameters.append(name)
        elif name == FILTER_PARAMETER:
            parameters.append(f"{name}={_loggable_filter(unquote_plus(value))}")
        else:
            parameters.append(f"{name}={HIDDEN}")
    return "&".join(parameters)


def _loggable_filter(text: str) -> str:
    field, separator, _ = text.partition(FILTER_SEPARATOR)
    return f"{_loggable_name(field)}{FILTER_SEPARATOR}{HIDDEN}" if separator else HIDDEN  # without one, all is value


def _parameter_name(name: str) -> str:
    """The API's parameter names are ASCII words (``limit``, ``filter``, ``after``): anything else in that place
    (``?姓名:张三``, ``?138-0013-8000``) is a value sent where a name belongs."""
    return name if _PARAMETER_NAME.match(name) else HIDDEN


def _loggable_name(name: str) -> str:
    if _NUMBER_LIKE_AN_IDENTIFIER.search(name):
        return HIDDEN
    return "".join(c if c.isprintable() and c not in _UNSAFE_IN_A_LOG_LINE else quote(c) for c in name)


class RedactedAccessLog(logging.Filter):
    """Rewrites uvicorn's access record (client, method, path with query, HTTP version, status) before any
    handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, target, version, status = record.args
            record.args = (client, method, loggable_target(str(target)), version, status)
        return True


def redact_access_log() -> None:
    """The access log as above; the error log's tracebacks (an unexpected error in a request) without values."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(installed, RedactedAccessLog) for installed in logger.filters):
        logger.addFilter(RedactedAccessLog())
    without_values(logging.getLogger(ERROR_LOGGER))
