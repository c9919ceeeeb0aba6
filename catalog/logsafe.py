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
_HEADER = re.compile(
    r"^(?:Traceback \(most recent call last\):|During handling of the above exception"
    r"|The above exception was the direct cause|\+[-+]+|$)"
)
_FRAME = re.compile(r'^\s*File "')
_GROUP_MARGIN = re.compile(r"^(\s*\|\s?)+")  # exception groups draw their members inside a margin of "|"
_CARETS = re.compile(r"^\s*[\^~]+\s*$")
_QUOTED = re.compile(r"""'[^']*'|"[^"]*\"""")
_IDENTIFIER = re.compile(r"""^['"][A-Za-z_][A-Za-z0-9_.]*['"]$""")
_LONG_NUMBER = re.compile(r"\d{6,}")


def redacted_traceback(error: BaseException) -> str:
    """The formatted traceback of ``error`` (with its causes) as a log may show it: the frames (``File …`` and the
    code line under each) as they are, every other line (the messages, however indented) redacted."""
    kept: list[str] = []
    after_frame = False
    for line in "".join(traceback.format_exception(error)).rstrip("\n").splitlines():
        inner = _GROUP_MARGIN.sub("", line)
        if inner.lstrip().startswith(_SERVER_DETAIL):
            continue
        code_line = after_frame and inner.startswith("    ")
        if _FRAME.match(inner) or code_line or _CARETS.match(inner) or _HEADER.match(inner.strip()):
            kept.append(line)
        else:
            kept.append(redacted(line))
        after_frame = bool(_FRAME.match(inner))
    return "\n".join(kept)


def redacted_message(error: BaseException) -> str:
    """``Type: message`` of ``error`` alone (its first line), redacted the same way."""
    return redacted("".join(traceback.format_exception_only(error)).strip().splitlines()[0])


def redacted(text: str) -> str:
    """A message from elsewhere (a driver, a server) with quoted literals and long numbers hidden."""
    text = _QUOTED.sub(lambda quoted: quoted[0] if _IDENTIFIER.match(quoted[0]) else HIDDEN, text)
    return _LONG_NUMBER.sub(HIDDEN, text)


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
