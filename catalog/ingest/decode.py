"""Turning a raw export's bytes into UTF-8 text: from UTF-8, UTF-8 with BOM, GB18030/GBK.

A wrong guess must be an error, never mojibake: every decoding is strict, and a decoding that succeeds but
yields text no department system writes (replacement or private-use characters, control codes, a high share
of rare scripts) is refused as well. The result stays UTF-8 bytes (the readers' input): UTF-8 exports are
checked in place with Arrow, not copied into a Python string.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

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


@dataclass(frozen=True)
class DecodedExport:
    utf8: bytes  # the text as UTF-8, without a BOM
    encoding: str  # the codec that decoded it: utf-8, utf-8-sig, gb18030 or gbk

    @cached_property
    def text(self) -> str:
        return self.utf8.decode("utf-8")


def decode_export(data: bytes, declared: str = "auto") -> DecodedExport:
    """Decode strictly with the declared encoding, or for ``auto`` with UTF-8 (BOM or not) then GB18030."""
    if _blank(data):
        raise ExportNotDecodable("the export is empty")
    failures: list[str] = []
    for codec in _candidates(data, declared):
        try:
            utf8 = _as_utf8(data, codec)
        except UnicodeDecodeError as error:
            failures.append(f"not {codec}: {_describe(data, error)}")
            continue
        problem = _implausible_utf8(utf8) or _incoherence(data, codec)
        if problem is None:
            return DecodedExport(utf8=utf8, encoding=codec)
        failures.append(f"not {codec}: {problem}")
    raise ExportNotDecodable(_message(data, declared, failures))


def _blank(data: bytes) -> bool:
    blank = b" \t\r\n" + UTF8_BOM
    return not data[:4096].strip(blank) and not data.strip(blank)  # no copy of a large export


def _as_utf8(data: bytes, codec: str) -> bytes:
    if codec not in ("utf-8", "utf-8-sig"):
        return data.decode(codec).encode("utf-8")
    body = data.removeprefix(UTF8_BOM) if codec == "utf-8-sig" else data
    try:
        _arrow_text(body).validate(full=True)  # SIMD validation; Python's decoder only to say where it broke
    except pa.ArrowInvalid:
        body.decode("utf-8")
    return body


def _arrow_text(utf8: bytes) -> pa.Array:
    """The bytes as one Arrow string, without copying them."""
    offsets = pa.py_buffer(np.array([0, len(utf8)], dtype=np.int64))
    return pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(utf8)])


def _implausible_utf8(utf8: bytes) -> str | None:
    """implausibility() for UTF-8 bytes: counted with RE2 in Arrow; only text with rare characters is decoded."""
    if b"\xef\xbf\xbd" in utf8:
        return "it holds replacement characters (U+FFFD)"
    if pc.count_substring_regex(_arrow_text(utf8), RARE_CHARACTER)[0].as_py() == 0:
        return None
    return implausibility(utf8.decode("utf-8"))


def _candidates(data: bytes, declared: str) -> list[str]:
    declared = declared.lower()
    if declared == "auto":
        return ["utf-8-sig"] if data.startswith(UTF8_BOM) else ["utf-8", "gb18030"]
    if declared in ("utf-8", "utf8", "utf-8-sig"):
        return ["utf-8-sig"]  # tolerates a BOM and never leaves it in the first column name
    return [declared]


def implausibility(text: str) -> str | None:
    """Why decoded text cannot be what a department's system wrote, or None if it can."""
    if "\ufffd" in text:
        return "it holds replacement characters (U+FFFD)"
    rare = RARE_PATTERN.findall(text)
    if not rare:
        return None
    private = [char for char in rare if unicodedata.category(char) in ("Co", "Cc", "Cs")]
    if private:
        return f"it holds {len(private)} control or private-use characters such as {_show(private)}"
    if len(rare) > MAX_RARE_SHARE * len(text):
        return f"{len(rare)} of {len(text)} characters are of rare scripts, such as {_show(rare)}"
    return None


def _incoherence(data: bytes, codec: str) -> str | None:
    """GBK-family decoding accepts most EUC-KR, EUC-JP and Big5 bytes as valid but meaningless Chinese;
    charset-normalizer's language-coherence check tells them apart where character ranges cannot."""
    if codec not in GB_FAMILY:
        return None
    sample = data[:COHERENCE_SAMPLE]
    if len(data) > COHERENCE_SAMPLE:
        sample = sample[: sample.rfind(b"\n") + 1] or sample
    best = from_bytes(sample, cp_isolation=[*GB_FAMILY, *LOOKALIKE_CODECS]).best()
    if best is None or best.encoding in GB_FAMILY:
        return None
    return f"the bytes read as {best.encoding} text, not as Chinese"


def _show(chars: list[str]) -> str:
    distinct = list(dict.fromkeys(chars))[:MAX_DETAIL]
    return ", ".join(f"U+{ord(char):04X}" for char in distinct)


def _describe(data: bytes, error: UnicodeDecodeError) -> str:
    where = "at the end (the file may be truncated)" if error.end >= len(data) else f"at byte offset {error.start}"
    return f"invalid byte 0x{data[error.start]:02X} {where}"


def _message(data: bytes, declared: str, failures: list[str]) -> str:
    message = f"the export does not decode as {declared} text: " + "; ".join(failures)
    if declared.lower() != "auto":
        try:
            detected = decode_export(data, "auto").encoding
        except ExportNotDecodable:
            return message
        message += f". It decodes as {detected}: declare encoding {detected.removesuffix('-sig')} or auto"
    return message
