from __future__ import annotations

from pathlib import Path

import pytest

from catalog.ingest import decode
from catalog.ingest.decode import decode_export, decode_file, implausibility
from catalog.ingest.errors import ExportNotDecodable


def test_plain_utf8_sample(samples_dir: Path) -> None:
    decoded = decode_export((samples_dir / "psga_population_20261120.csv").read_bytes())
    assert decoded.encoding == "utf-8"
    assert decoded.text.startswith("公民身份号码,姓名,")


def test_utf8_with_bom_leaves_no_bom_in_the_first_column(samples_dir: Path) -> None:
    data = (samples_dir / "psga_population_20261121.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    for declared in ("auto", "utf-8"):
        decoded = decode_export(data, declared)
        assert decoded.encoding == "utf-8-sig"
        assert decoded.text.startswith("公民身份号码,")


def test_gb18030_is_detected(samples_dir: Path) -> None:
    decoded = decode_export((samples_dir / "scjg_enterprise_20261120.csv").read_bytes())
    assert decoded.encoding == "gb18030"
    assert decoded.text.startswith("统一社会信用代码,企业名称,法定代表人")


def test_gb18030_declared_as_utf8_is_an_error_that_says_what_it_is(samples_dir: Path) -> None:
    data = (samples_dir / "scjg_enterprise_20261120.csv").read_bytes()
    with pytest.raises(ExportNotDecodable) as raised:
        decode_export(data, "utf-8")
    assert "does not decode as utf-8 text: not utf-8-sig: invalid byte 0xC9 at byte offset 4" in raised.value.message
    assert "It decodes as gb18030: declare encoding gb18030 or auto" in raised.value.message


def test_utf8_declared_as_gb18030_is_refused(samples_dir: Path) -> None:
    data = (samples_dir / "psga_population_20261120.csv").read_bytes()
    with pytest.raises(ExportNotDecodable, match="does not decode as gb18030 text: not gb18030") as raised:
        decode_export(data, "gb18030")
    assert "It decodes as utf-8" in raised.value.message


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"\xef\xbb\xbf\n"])
def test_an_empty_export_is_an_error(data: bytes) -> None:
    with pytest.raises(ExportNotDecodable, match="the export is empty"):
        decode_export(data)


def test_a_file_cut_inside_a_character_is_reported_as_truncated() -> None:
    data = "事件编号,事件类型\nPS20261116000000,噪音扰民\n".encode()[:-2]
    with pytest.raises(
        ExportNotDecodable, match=r"not utf-8-sig: invalid byte 0xE6 at the end \(the file may be truncated\)"
    ):
        decode_export(data, "utf-8")


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        pytest.param("Name,City\nJürgen Müller,Köln\nRené,Zürich\n" * 20, "latin-1", id="latin-1"),
        pytest.param("氏名,住所\n山田太郎,東京都千代田区\n" * 20, "shift_jis", id="shift-jis"),
        pytest.param("이름,주소\n김민준,서울특별시\n" * 20, "euc-kr", id="euc-kr"),
        pytest.param("名前,住所\n佐藤花子,大阪府大阪市北区梅田一丁目\n" * 20, "euc-jp", id="euc-jp"),
        pytest.param("姓名,地址\n陳華,臺北市中正區重慶南路一段\n" * 20, "big5", id="big5"),
    ],
)
def test_other_encodings_are_never_taken_for_gb18030(text: str, codec: str) -> None:
    with pytest.raises(ExportNotDecodable, match="not gb18030"):
        decode_export(text.encode(codec))


def test_short_gb18030_exports_are_still_recognised() -> None:
    text = "姓名,地址\n陈华,深圳市坪山区马峦街道283号\n"
    assert decode_export(text.encode("gb18030")).text == text
    assert decode_export(text.encode("gbk"), "gbk").text == text


def test_plausible_text() -> None:
    assert implausibility("姓名,地址\n陈华,深圳市坪山区（马峦街道）283号—A座\n") is None
    assert implausibility("a\ufffdb") == "it holds replacement characters (U+FFFD)"
    assert "control or private-use" in (implausibility("a\ue000b") or "")


CASES = [
    "姓名,地址\n陈华,深圳市坪山区马峦街道283号—A座\n" * 3,
    "\ufeff姓名,地址\n李娜,坪山\n",
    "Name,City\nJürgen Müller,Köln\n" * 2,
]
BROKEN = [
    "事件编号,事件类型\nPS1,噪音扰民\n".encode()[:-2],  # cut inside a character
    "姓名\n陈华\n".encode() + b"\xff" + "李娜\n".encode(),  # an invalid byte inside
    "姓名,地址\n陈华,\ue000坪山\n".encode(),  # a private-use character
    "姓名,地址\n陈华,马峦街道\n".encode("gb18030")[:-3],  # GB18030 cut inside a character
]


def decoded(data: bytes, tmp_path: Path, declared: str) -> tuple[str, str]:
    """What decode_file makes of the bytes: (encoding, text) or ("error", message)."""
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    try:
        result = decode_file(path, declared, spool=tmp_path)
    except ExportNotDecodable as error:
        return "error", error.message
    with result.open() as text:
        content = text.read().decode("utf-8")
    if result.transcoded:
        result.path.unlink()
    return result.encoding, content


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize("declared", ["auto", "utf-8", "gb18030"])
def test_a_file_decoded_a_block_at_a_time_is_decoded_as_whole(
    block: int, declared: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = [text.encode("utf-8") for text in CASES] + [CASES[0].encode("gb18030")] + BROKEN
    whole = [decoded(data, tmp_path, declared) for data in exports]
    monkeypatch.setattr(decode, "BLOCK_BYTES", block)
    assert [decoded(data, tmp_path, declared) for data in exports] == whole
    assert list(tmp_path.iterdir()) == [tmp_path / "export.csv"]  # no transcoded copy left behind


def test_a_file_keeps_its_place_in_the_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "BLOCK_BYTES", 4)
    assert decoded(BROKEN[0], tmp_path, "utf-8")[1].endswith("invalid byte 0xE6 at the end (the file may be truncated)")
    assert "invalid byte 0xFF at byte offset 14" in decoded(BROKEN[1], tmp_path, "utf-8")[1]
    assert decoded(CASES[0].encode("gb18030"), tmp_path, "auto") == ("gb18030", CASES[0])
    assert decoded(CASES[1].encode(), tmp_path, "utf-8") == ("utf-8-sig", CASES[1][1:])
