from __future__ import annotations

from pathlib import Path

import pytest

from catalog.ingest.decode import decode_export, implausibility
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
