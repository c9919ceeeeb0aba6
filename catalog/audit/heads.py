"""The chain's heads outside the database: an append-only JSON-lines file (one signed head per seal that added
blocks) and a log line each. Whoever owns the database cannot rewrite these with the rows; verification checks
that every head written still is in the chain, with the same hash and a good signature."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from catalog.audit.errors import InvalidHead
from catalog.audit.schemas import SignedHead

logger = logging.getLogger("datashare.audit")
TAIL_BYTES = 64 * 1024  # a head is about 500 bytes: the last one is in the file's last 64 KB


@dataclass(frozen=True)
class HeadLine:
    """A line of the heads file: its number, and the head or why it is not one."""

    number: int
    head: SignedHead | None
    problem: str | None = None


def publish(path: Path, head: SignedHead) -> bool:
    """Append ``head`` to the file unless the file already has it or a newer one; log it. Idempotent: each run of
    a seal publishes the chain's newest head after its commit (a run that died before that is made good by the
    next). True when appended."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(descriptor, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two sealers' publications never interleave or repeat
        try:
            last = _last_head(handle)
            if last is not None and last.block >= head.block:
                return False
            handle.write(head.model_dump_json().encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    logger.info("audit chain head: %s", head.model_dump_json())
    return True


def _last_head(handle: BinaryIO) -> SignedHead | None:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - TAIL_BYTES))
    for line in reversed(handle.read().splitlines()):
        if line.strip():
            try:
                return SignedHead.model_validate_json(line)
            except ValidationError:
                return None  # a damaged last line: verification reports it; the next head goes after it
    return None


def read(path: Path) -> Iterator[HeadLine]:
    """Every line of the heads file (none if there is no file)."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield HeadLine(number, SignedHead.model_validate_json(line))
            except ValidationError:
                yield HeadLine(number, None, "not a signed head")


def parse(text: str) -> SignedHead:
    """A head given by hand (the JSON `datashare audit head --json` printed, kept elsewhere)."""
    try:
        return SignedHead.model_validate(json.loads(text))
    except (ValueError, ValidationError) as error:
        raise InvalidHead(f"not a signed head: {error}") from None
