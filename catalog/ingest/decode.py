"""Turning a raw export's bytes into UTF-8 text: from UTF-8, UTF-8 with BOM, GB18030/GBK.

A wrong guess must be an error, never mojibake: every decoding is strict, and a decoding that succeeds but
yields text no department system writes (replacement or private-use characters, control codes, a high share
of rare scripts) is refused as well. The result stays UTF-8 bytes (the readers' input): UTF-8 exports are
checked in place with Arrow, not copied into a Python string.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from charset_normalizer import from_bytes

from catalog.ingest.errors import ExportNotDecodable

UTF8_BOM = b"\xef\xbb\xbf"
# Characters ordinary Chinese government exports consist of; anything else counts as rare.
COMMON_RANGES = (
    (0x0009, 0x000D),  # tab, line breaks
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x024F),  # Latin-1 and Latin Extended (names of foreign residents, °, ×)
    (0x2000, 0x206F),  # general punctuation (— “ ” …)
    (0x2100, 0x218F),  # letter-like symbols, number forms (№, Ⅳ)
    (0x2460, 0x24FF),  # enclosed numbers (①)
    (0x3000, 0x303F),  # CJK punctuation (、。《》【】)
    (0x3400, 0x4DBF),  # CJK extension A (rare given names)
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xFF00, 0xFFEF),  # full-width forms (，：（）)
)
RARE_CHARACTER = "[^" + "".join(f"\\x{{{low:x}}}-\\x{{{high:x}}}" for low, high in COMMON_RANGES) + "]"
RARE_PATTERN = re.compile("[^" + "".join(f"{chr(low)}-{chr(high)}" for low, high in COMMON_RANGES) + "]")
MAX_RARE_SHARE = 0.01
GB_FAMILY = ("gb18030", "gbk", "gb2312")
LOOKALIKE_CODECS = ("big5", "euc_kr", "euc_jp", "shift_jis", "cp1252")
COHERENCE_SAMPLE = 64 * 1024
MAX_DETAIL = 3


BLOCK_BYTES = 16 << 20  # an export is read, checked and (if need be) transcoded this much at a time


@dataclass(frozen=True)
class DecodedExport:
    utf8: bytes  # the text as UTF-8, without a BOM
    encoding: str  # the codec that decoded it: utf-8, utf-8-sig, gb18030 or gbk

    @cached_property
    def text(self) -> str:
        return self.utf8.decode("utf-8")


@dataclass(frozen=True)
class DecodedFile:
    """An export file's text as UTF-8: the file itself from ``offset`` (past a BOM), or a transcoded copy."""

    path: Path
    offset: int
    encoding: str
    transcoded: bool  # ``path`` is a copy of the caller's, to remove when done

    def open(self) -> BinaryIO:
        handle = self.path.open("rb")
        handle.seek(self.offset)
        return handle


def decode_export(data: bytes, declared: str = "auto") -> DecodedExport:
    """Decode strictly with the declared encoding, or for ``auto`` with UTF-8 (BOM or not) then GB18030."""
    sinks: list[_KeptBytes] = []

    def new_sink() -> BinaryIO:
        sinks.append(_KeptBytes())
        return sinks[-1]

    codec, offset = _decode(io.BytesIO(data), declared, new_sink)
    if not _is_utf8(codec):
        return DecodedExport(utf8=sinks[-1].kept, encoding=codec)
    return DecodedExport(utf8=data[offset:] if offset else data, encoding=codec)


class _KeptBytes(io.BytesIO):
    """A sink whose bytes outlive its closing."""

    kept = b""

    def close(self) -> None:
        self.kept = self.getvalue()
        super().close()


def decode_file(path: Path, declared: str = "auto", spool: Path | None = None) -> DecodedFile:
    """``decode_export`` for a file, read a block at a time: a UTF-8 file is checked in place, another encoding is
    transcoded into a temporary file in ``spool`` (by default the system's temporary folder; never the drop folder)."""
    copies: list[Path] = []

    def new_copy() -> BinaryIO:
        descriptor, name = tempfile.mkstemp(dir=spool, prefix=".utf8-")
        copies.append(Path(name))
        return os.fdopen(descriptor, "wb")

    try:
        with path.open("rb") as source:
            codec, offset = _decode(source, declared, new_copy)
    except BaseException:
        for copy in copies:
            copy.unlink(missing_ok=True)
        raise
    for copy in copies[:-1]:  # a candidate that failed
        copy.unlink(missing_ok=True)
    if not _is_utf8(codec):
        return DecodedFile(copies[-1], 0, codec, transcoded=True)
    for copy in copies:
        copy.unlink(missing_ok=True)
    return DecodedFile(path, offset, codec, transcoded=False)


def _decode(source: BinaryIO, declared: str, new_sink: Callable[[], BinaryIO]) -> tuple[str, int]:
    """The codec that decodes the whole source, and where its text starts; a transcoded text went to the last sink."""
    source.seek(0)
    head = source.read(COHERENCE_SAMPLE + 1)
    if _blank(source, head):
        raise ExportNotDecodable("the export is empty")
    failures: list[str] = []
    for codec in _candidates(head, declared):
        source.seek(0)
        if not _is_utf8(codec):
            with new_sink() as sink:
                problem = _transcode(source, codec, sink)
        else:
            problem = _check_utf8(source, codec == "utf-8-sig")
        problem = problem or _incoherence(head, codec)
        if problem is None:
            return codec, len(UTF8_BOM) if codec == "utf-8-sig" and head.startswith(UTF8_BOM) else 0
        failures.append(f"not {codec}: {problem}")
    raise ExportNotDecodable(_message(source, declared, failures))


def _is_utf8(codec: str) -> bool:
    return codec in ("utf-8", "utf-8-sig")


def _blank(source: BinaryIO, head: bytes) -> bool:
    blank = b" \t\r\n" + UTF8_BOM
    if head.strip(blank):
        return False
    while block := source.read(BLOCK_BYTES):  # a large export of blanks only: read on, never held whole
        if block.strip(blank):
            return False
    return True


def _check_utf8(source: BinaryIO, bom: bool) -> str | None:
    """Why the source is not plausible UTF-8 text, or None. Blocks are cut after their last whole character."""
    if bom and source.read(len(UTF8_BOM)) != UTF8_BOM:
        source.seek(0)
    position, carried, tally = source.tell(), 0, Plausibility()
    buffer = bytearray(BLOCK_BYTES + 4)  # read into in place: the bytes of a character cut by a block's end, then more
    while True:
        read = source.readinto(memoryview(buffer)[carried : carried + BLOCK_BYTES]) or 0  # type: ignore[attr-defined]
        data = memoryview(buffer)[: carried + read]
        cut = _whole_characters(data) if read else len(data)
        part = data[:cut]
        try:
            _arrow_text(part).validate(full=True)  # SIMD validation; Python's decoder only to say where it broke
        except pa.ArrowInvalid:
            try:
                bytes(part).decode("utf-8")
            except UnicodeDecodeError as error:
                return _describe(part[error.start], position + error.start, at_end=not read and error.end >= cut)
        tally.add_utf8(part)
        position += cut
        if not read:
            return tally.finish()
        carried = len(data) - cut
        buffer[:carried] = data[cut:]


def _transcode(source: BinaryIO, codec: str, sink: BinaryIO) -> str | None:
    """Decode the source with ``codec`` block by block, writing its text as UTF-8 to ``sink``; why it is not plausible
    text in that codec, or None."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    position, tally = 0, Plausibility()
    while True:
        block = source.read(BLOCK_BYTES)
        pending = len(decoder.getstate()[0])
        try:
            utf8 = decoder.decode(block, final=not block).encode("utf-8")
        except UnicodeDecodeError as error:  # its object: the bytes still pending, then this block
            at_end = not block or (error.end >= len(error.object) and not source.read(1))
            return _describe(error.object[error.start], position - pending + error.start, at_end)
        sink.write(utf8)
        tally.add_utf8(utf8)
        position += len(block)
        if not block:
            return tally.finish()


def _whole_characters(data: bytes | memoryview) -> int:
    """Where the last whole UTF-8 character of ``data`` ends (a character cut by the block's end waits for the next)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): does its character fit?
            length = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return len(data) - back if length > back else len(data)
    return len(data)


def _arrow_text(utf8: bytes | memoryview) -> pa.Array:
    """The bytes as one Arrow string, without copying them."""
    offsets = pa.py_buffer(np.array([0, len(utf8)], dtype=np.int64))
    return pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(utf8)])


class Plausibility:
    """Whether text, given a block at a time, can be what a department's system wrote: no replacement, control or
    private-use characters, and at most ``MAX_RARE_SHARE`` of rare scripts. The first problem found stands (a text
    that does not decode further on is told as such: the caller reads on)."""

    def __init__(self) -> None:
        self.characters, self.rare, self.examples = 0, 0, list[str]()
        self.problem: str | None = None

    def add_utf8(self, utf8: bytes | memoryview) -> None:
        """Rare characters (U+FFFD among them) are counted with RE2 in Arrow; only a block holding some is decoded."""
        if self.problem is not None:
            return
        text = _arrow_text(utf8)
        self.characters += pc.utf8_length(text)[0].as_py()
        if pc.count_substring_regex(text, RARE_CHARACTER)[0].as_py():
            decoded = bytes(utf8).decode("utf-8")
            self.characters -= len(decoded)  # counted again by add_text
            self.add_text(decoded)

    def add_text(self, text: str) -> None:
        if "\ufffd" in text:
            self.problem = self.problem or "it holds replacement characters (U+FFFD)"
        self.characters += len(text)
        self._add_rare(RARE_PATTERN.findall(text))

    def _add_rare(self, rare: list[str]) -> None:
        private = [char for char in rare if unicodedata.category(char) in ("Co", "Cc", "Cs")]
        if private and self.problem is None:
            self.problem = f"it holds {len(private)} control or private-use characters such as {_show(private)}"
        self.rare += len(rare)
        self.examples = list(dict.fromkeys(self.examples + rare))[:MAX_DETAIL]

    def finish(self) -> str | None:
        if self.problem is None and self.rare > MAX_RARE_SHARE * self.characters:
            return f"{self.rare} of {self.characters} characters are of rare scripts, such as {_show(self.examples)}"
        return self.problem


def _candidates(data: bytes, declared: str) -> list[str]:
    declared = declared.lower()
    if declared == "auto":
        return ["utf-8-sig"] if data.startswith(UTF8_BOM) else ["utf-8", "gb18030"]
    if declared in ("utf-8", "utf8", "utf-8-sig"):
        return ["utf-8-sig"]  # tolerates a BOM and never leaves it in the first column name
    return [declared]


def implausibility(text: str) -> str | None:
    """Why decoded text cannot be what a department's system wrote, or None if it can."""
    tally = Plausibility()
    tally.add_text(text)
    return tally.finish()


def _incoherence(head: bytes, codec: str) -> str | None:
    """GBK-family decoding accepts most EUC-KR, EUC-JP and Big5 bytes as valid but meaningless Chinese;
    charset-normalizer's language-coherence check tells them apart where character ranges cannot. ``head``: the
    export's first COHERENCE_SAMPLE bytes, and one more if there are more."""
    if codec not in GB_FAMILY:
        return None
    sample = head[:COHERENCE_SAMPLE]
    if len(head) > COHERENCE_SAMPLE:
        sample = sample[: sample.rfind(b"\n") + 1] or sample
    best = from_bytes(sample, cp_isolation=[*GB_FAMILY, *LOOKALIKE_CODECS]).best()
    if best is None or best.encoding in GB_FAMILY:
        return None
    return f"the bytes read as {best.encoding} text, not as Chinese"


def _show(chars: list[str]) -> str:
    distinct = list(dict.fromkeys(chars))[:MAX_DETAIL]
    return ", ".join(f"U+{ord(char):04X}" for char in distinct)


def _describe(byte: int, offset: int, at_end: bool) -> str:
    where = "at the end (the file may be truncated)" if at_end else f"at byte offset {offset}"
    return f"invalid byte 0x{byte:02X} {where}"


def _message(source: BinaryIO, declared: str, failures: list[str]) -> str:
    message = f"the export does not decode as {declared} text: " + "; ".join(failures)
    if declared.lower() != "auto":
        try:
            detected, _ = _decode(source, "auto", lambda: open(os.devnull, "wb"))  # noqa: SIM115 - closed by _decode
        except ExportNotDecodable:
            return message
        message += f". It decodes as {detected}: declare encoding {detected.removesuffix('-sig')} or auto"
    return message
