"""One definition per identifier: the ingest quality suite and the sensitive-field detection judge phone numbers
and e-mail addresses by the same functions, so a type detection proposes is one the quality suite accepts."""

from __future__ import annotations

import random
import re

import pyarrow as pa
import pytest
from sqlalchemy import Engine, String, literal, select

from catalog.classification import identifiers as ids
from catalog.classification.detection import profile_field
from catalog.classification.masking import mask, mask_column, mask_sql
from catalog.classification.types import MaskingRule
from catalog.classification.types import SemanticType as S
from catalog.ingest.conform import conform
from catalog.ingest.quality import QualityReport, validate_batch
from catalog.ingest.tables import RawTable
from catalog.items.schemas import FieldDeclaration
from tests.catalog.test_detection import SCHEME

PHONES = [
    "13812345678",
    "19912345678",
    "16612345678",
    "+8613812345678",
    "+86 138 1234 5678",
    "+86-138-1234-5678",
    "0086 13812345678",
    "8613812345678",
    "138-1234-5678",
    "138 1234 5678",
    "0755-28123456",  # landlines: an area code, then 7 or 8 digits not starting with 0 or 1
    "075528123456",
    "010-62345678",
    "020 83123456",
    "0898-6512345",
    "(0755)28123456",
    "（0755）28123456",
    "0755-2812 3456",
    "+86 755 2812 3456",
    "+86-10-62345678",
    "0755-28123456-8001",  # extensions
    "0755-28123456转8001",
]
NOT_PHONES = [
    "12812345678",  # no 12x mobile prefix
    "10086123456",
    "1381234567",  # 10 digits
    "138123456789",
    "+8512812345678",
    "+86 138 1234 567",
    "138 1234 5678 9",
    "0755-02812345",  # a local number never starts with 0 or 1
    "0755-1812345",
    "0000-0000000",
    "00755-28123456",
    "755-28123456",  # no trunk 0
    "+86 0755 28123456",  # the trunk 0 is dropped after +86
    "28123456",  # no area code: any 8-digit number
    "0755-281234",  # 6 digits
    "0755-281234567",  # 9 digits
    "400-820-8820",  # service numbers are no one's phone
    "95588",
    "tel:13812345678",
    "13812345678/13912345678",
    "１３８１２３４５６７８",  # full-width digits
    "无",
]
EMAILS = [
    "chen.hua@ps.gov.cn",
    "123456789@qq.com",
    "li_na+work@163.com",
    "Chen.Hua@PS.GOV.CN",
    "a-b@sub-domain.example.cn",
    "x@a.io",
    "chen.@qq.com",  # the local part as mail systems here accept it
]
NOT_EMAILS = [
    "chen.hua@",
    "@ps.gov.cn",
    "chen hua@ps.gov.cn",
    "chen.hua@ps",
    "a@b@c.cn",
    "chen@ps..gov.cn",
    "chen@-ps.gov.cn",
    "chen@ps-.gov.cn",
    "chen@ps.gov.c",
    "mailto:chen@ps.gov.cn",
    "chen@ps.gov.cn;li@ps.gov.cn",
    "陈华@ps.gov.cn",
    "不是邮箱",
]


def quality_of(semantic_type: S, values: list[str]) -> QualityReport:
    fields = [
        FieldDeclaration(name="编号", key=True, data_type="integer", level=1),  # type: ignore[arg-type]
        FieldDeclaration(name="值", semantic_type=semantic_type, level=3),
    ]
    table = RawTable.from_rows(["编号", "值"], [[str(row), value] for row, value in enumerate(values, 1)])
    return validate_batch(conform(table, fields), fields, previous_rows=None)


def quality_accepts(semantic_type: S, values: list[str]) -> list[bool]:
    """Per value: whether the quality suite of a field declared ``semantic_type`` passes its row."""
    failing = quality_of(semantic_type, values).failing_rows
    return [row not in failing for row in range(1, len(values) + 1)]


def detection_finds(semantic_type: S, value: str) -> bool:
    """Whether detection takes a field of this one value for ``semantic_type``."""
    profile = profile_field([value], S.NONE, 1, SCHEME)
    return any(found.semantic_type is semantic_type and found.share == 1 for found in profile.detections)


@pytest.mark.parametrize(
    ("semantic_type", "accepted", "refused"), [(S.PHONE, PHONES, NOT_PHONES), (S.EMAIL, EMAILS, NOT_EMAILS)]
)
def test_quality_passes_a_value_exactly_when_detection_finds_its_type(
    semantic_type: S, accepted: list[str], refused: list[str]
) -> None:
    values = accepted + refused
    expected = [True] * len(accepted) + [False] * len(refused)
    by_quality = quality_accepts(semantic_type, values)
    by_detection = [detection_finds(semantic_type, value) for value in values]
    assert [value for value, ok, want in zip(values, by_quality, expected, strict=True) if ok != want] == []
    assert [value for value, ok, want in zip(values, by_detection, expected, strict=True) if ok != want] == []


def mutations(values: list[str], alphabet: str, count: int, seed: int) -> list[str]:
    """Values one or two edits (a character deleted, inserted or replaced) away from ``values``, none blank."""
    rng = random.Random(seed)
    mutated: list[str] = []
    while len(mutated) < count:
        value = rng.choice(values)
        for _ in range(rng.randint(1, 2)):
            at = rng.randrange(len(value) + 1)
            edit = rng.choice(["delete", "insert", "replace"])
            kept = at + 1 if edit in ("delete", "replace") else at
            value = value[:at] + ("" if edit == "delete" else rng.choice(alphabet)) + value[kept:]
        if value.strip():
            mutated.append(value)
    return mutated


@pytest.mark.parametrize(
    ("semantic_type", "examples", "alphabet"),
    [(S.PHONE, PHONES, "0123456789+-() （）转 "), (S.EMAIL, EMAILS, "az09.@-_+ ")],
)
def test_quality_and_detection_agree_on_values_near_the_edge(
    semantic_type: S, examples: list[str], alphabet: str
) -> None:
    values = mutations(examples, alphabet, count=400, seed=7)
    by_detection = [detection_finds(semantic_type, value) for value in values]
    assert 0.1 < sum(by_detection) / len(values) < 0.9  # the edits land on both sides of the rule
    disagreements = [
        value
        for value, accepted, found in zip(values, quality_accepts(semantic_type, values), by_detection, strict=True)
        if accepted != found
    ]
    assert disagreements == []


def test_a_phone_type_detection_proposes_is_one_the_quality_suite_accepts() -> None:
    """Accepting detection's proposal for a field of mobiles written in every usual way, and landlines, must not
    quarantine the next batch."""
    values = [f"+86 138 {n:04d} 5678" for n in range(100)] + [f"0755-2812{n:04d}" for n in range(100)]
    values += [f"139{n:08d}" for n in range(100)]
    profile = profile_field(values, S.NONE, 1, SCHEME)
    assert profile.detected_type() is S.PHONE
    report = quality_of(S.PHONE, values)
    assert report.success, report.reasons()


def test_the_quality_suite_checks_with_the_recognisers_not_a_regex_of_its_own() -> None:
    import catalog.ingest.quality as quality

    assert not hasattr(quality, "PHONE_PATTERN") and not hasattr(quality, "EMAIL_PATTERN")
    gx_checks = pytest.importorskip("catalog.ingest.gx_checks")
    assert gx_checks.phone_valid is ids.phone_valid
    assert gx_checks.email_valid is ids.email_valid


# --- vehicle plates and names ----------------------------------------------------------------------------------
def test_plates_are_recognised_with_a_hyphen_a_dot_or_a_space_after_the_letter() -> None:
    written = ["粤B-12345", "粤B·12345", "粤B•12345", "粤B 12345", "粤B12345", "粤B-D12345", "京A-8888学"]
    assert ids.vehicle_plate_valid(pa.array(written)).tolist() == [True] * len(written)
    not_plates = ["粤-B12345", "粤B--12345", "粤B-1234", "粤B-", "粤B - 12345", "AB-12345"]
    assert ids.vehicle_plate_valid(pa.array(not_plates)).tolist() == [False] * len(not_plates)


# Names with surnames of the census ranking and of the Hundred Family Surnames that a list of the most common
# few hundred leaves out.
NAMES = [
    "赖文峰", "洪秀全", "萧何", "龚丽", "邱少云", "覃小燕", "詹天佑", "钟南山", "阎锡山", "闫妮", "甘宁", "柴进",
    "邹韬奋", "时迁", "和珅", "海瑞", "花木兰", "云飞", "山丹", "明亮", "那英", "相国华", "查良镛", "乜小云",
    "佴晓", "笪志刚", "谯周", "缑小明", "鲜于枢", "第五伦", "公冶长", "司空曙", "端木蕻良", "令狐冲", "独孤信",
    "拓跋宏", "呼延庆", "皇甫谧", "淳于髡", "左丘明", "仉鹏",
]  # fmt: skip


def test_names_with_any_surname_of_the_complete_list_are_recognised() -> None:
    recognised = ids.person_name_valid(pa.array(NAMES)).tolist()
    assert [name for name, ok in zip(NAMES, recognised, strict=True) if not ok] == []


def test_a_name_column_of_rarer_surnames_is_detected() -> None:
    given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"
    names = [surname + given[n % 20] + given[n // 20 % 20] for n, surname in enumerate("赖洪萧覃仉笪" * 50)]
    assert profile_field(names, S.FREE_TEXT, 1, SCHEME).detected_type() is S.PERSON_NAME


# --- masking of every phone form the rule accepts -----------------------------------------------------------------
@pytest.mark.parametrize("phone", PHONES)
def test_a_masked_phone_keeps_its_last_four_digits_and_hides_the_rest_of_the_number(phone: str) -> None:
    masked = mask(MaskingRule.PHONE, phone, b"")
    assert masked is not None and len(masked) == len(phone) and masked[-4:] == phone[-4:]
    shown_digits = re.sub(r"[^0-9]", "", masked)
    assert len(shown_digits) <= 7  # a bare mobile shows 3 + 4 of its 11 digits; no form shows more
    assert re.sub(r"[^0-9]", "", phone).endswith(shown_digits[-4:])
    assert masked.count("*") >= 4


def test_postgresql_masks_every_phone_form_as_the_reference_does(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the rules as SQL serve PostgreSQL only")
    with engine.connect() as connection:
        in_sql = [connection.scalar(select(mask_sql(MaskingRule.PHONE, literal(p, String), b""))) for p in PHONES]
    assert in_sql == mask_column(MaskingRule.PHONE, pa.array(PHONES, pa.string()), b"").to_pylist()
