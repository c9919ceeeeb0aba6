"""Loggers whose tracebacks carry no personal data.

The platform's own messages name items, batches and counts, never values. An exception's message is another
matter: PostgreSQL explains a refused row with its values (``DETAIL:  Key (code)=(4403…) already exists``,
``Failing row contains (…)``), and a parser quotes the cell it could not read. Records logged through
``logger(name)`` (and uvicorn's error log, see api/logs.py) have their traceback rewritten: the server's
``DETAIL`` lines are dropped, and in the exceptions' messages quoted literals other than identifiers and runs of
six or more digits are hidden. The code lines and the exception types stay, which is what ops need to act.
"""

from __future__ import annotations

import contextlib
import logging
import re
import traceback

HIDDEN = "*"
_SERVER_DETAIL = ("DETAIL:", "Failing row contains")
_FRAME_OR_HEADER = re.compile(
    r"^(?:\s|Traceback \(most recent call last\):|During handling of the above exception"
    r"|The above exception was the direct cause|$)"
)
_QUOTED = re.compile(r"""'[^']*'|"[^"]*\"""")
_IDENTIFIER = re.compile(r"""^['"][A-Za-z_][A-Za-z0-9_.]*['"]$""")
_LONG_NUMBER = re.compile(r"\d{6,}")


def redacted_traceback(error: BaseException) -> str:
    """The formatted traceback of ``error`` (with its causes) as a log may show it."""
    lines = "".join(traceback.format_exception(error)).rstrip("\n").splitlines()
    return "\n".join(_redacted(line) for line in lines if not line.lstrip().startswith(_SERVER_DETAIL))


def redacted_message(error: BaseException) -> str:
    """``Type: message`` of ``error`` alone, redacted the same way."""
    return _redacted("".join(traceback.format_exception_only(error)).strip().splitlines()[0])


def redacted(text: str) -> str:
    """A message from elsewhere (a driver, a server) with quoted literals and long numbers hidden."""
    text = _QUOTED.sub(lambda quoted: quoted[0] if _IDENTIFIER.match(quoted[0]) else HIDDEN, text)
    return _LONG_NUMBER.sub(HIDDEN, text)


def _redacted(line: str) -> str:
    if _FRAME_OR_HEADER.match(line):
        return line
    return redacted(line)


class WithoutValues(logging.Filter):
    """Formats a record's exception the redacted way before any handler does (handlers reuse ``exc_text``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redacted_traceback(record.exc_info[1])
        return True


def without_values(logger_: logging.Logger) -> logging.Logger:
    if not any(isinstance(installed, WithoutValues) for installed in logger_.filters):
        logger_.addFilter(WithoutValues())
    return logger_


_LOGGED = "_datashare_logged"


def log_failure(logger_: logging.Logger, error: BaseException, message: str, *args: object) -> None:
    """Log ``error``'s traceback (without values) once, however many layers catch and re-raise it."""
    if getattr(error, _LOGGED, False):
        return
    without_values(logger_).error(message, *args, exc_info=error)
    with contextlib.suppress(AttributeError):  # a type that takes no attributes is logged again if caught again
        setattr(error, _LOGGED, True)


def logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the filter installed: the platform's modules log through these."""
    return without_values(logging.getLogger(name))
