"""The recognisers of identifiers and the profiling of a field against its declaration (pure: no database)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from catalog.classification import identifiers as ids
from catalog.classification.detection import DetectionSettings, FindingReason, profile_field
from catalog.classification.schemas import ClassificationScheme, LevelDeclaration
from catalog.classification.types import SemanticType as S

# The scheme seeded by the first migration.
SCHEME = ClassificationScheme(
    levels=[
        LevelDeclaration(level=level, code=code, name_zh=code, name_en=code)
        for level, code in [(1, "public"), (2, "internal"), (3, "sensitive"), (4, "restricted")]
    ],
    minimum_levels={
        S.RESIDENT_ID: 3, S.PHONE: 3, S.PERSON_NAME: 3, S.EMAIL: 3, S.BANK_CARD: 3, S.ADDRESS: 2, S.VEHICLE_PLATE: 2,
    },
)  # fmt: skip


def valid(check: Callable[[pd.Series], pd.Series], values: list[str]) -> list[bool]:
    result: list[bool] = check(pd.Series(values, dtype=object)).tolist()
    return result


CASES = {
    "resident_id_valid": (
        ["11010519491231002X", "440307195307144048"],
        [
            "110105194912310020",  # the right shape, a wrong check character
            "440307195307144049",
            "11010519491231002x",  # the check character is an upper-case X
            "1101051949123100",  # too short
            "4403071953071440481",  # too long
            "44030719530714404X",
            "",
        ],
    ),
    "uscc_valid": (
        ["91350100M000100Y43", "91440300708461136T"],
        [
            "91350100M000100Y44",  # a wrong check character
            "91440300708461136X",
            "91350100I000100Y43",  # I is not in the alphabet
            "91350100m000100Y43",
            "91350100M000100Y4",
        ],
    ),
    "bank_card_valid": (
        ["4111111111111111", "6222021234567890128", "6228480012345671", "378282246310005", "6222 0212 3456 7890 128"],
        [
            "4111111111111112",  # Luhn fails
            "6222021234567890123",
            "6228480012345678",
            "79927398713",  # passes Luhn, but 11 digits are no card
            "0000000000000000",  # passes Luhn, but starts with 0
            "41111111111111111111",  # 20 digits
            "4111a11111111111",
        ],
    ),
    "phone_valid": (
        [
            "13812345678",
            "19912345678",
            "+8613812345678",
            "8613812345678",
            "+86 138-1234-5678",
            "138 1234 5678",
            "0755-28123456",  # a landline (tests/catalog/test_identifier_rules.py has every form)
        ],
        [
            "12812345678",  # no 12x mobile prefix
            "10086123456",
            "23812345678",
            "1381234567",  # 10 digits
            "138123456789",
            "0755-18123456",  # a landline's local number never starts with 1
            "+8512812345678",
        ],
    ),
    "email_valid": (
        ["chen.hua@ps.gov.cn", "123456789@qq.com", "li_na+work@163.com"],
        ["chen.hua@", "@ps.gov.cn", "chen hua@ps.gov.cn", "chen.hua@ps", "a@b@c.cn", "不是邮箱"],
    ),
    "person_name_valid": (
        ["王小明", "李娜", "欧阳娜娜", "司马光", "上官婉儿", "陈华"],
        [
            "学生",  # 学 is no common surname
            "中华人民",
            "王府井路",  # a surname, but the ending of a road
            "马峦社区",
            "张家口市",
            "王",  # too short
            "王小明明明",  # too long
            "Wang Wei",
            "王 伟",
        ],
    ),
    "address_valid": (
        [
            "广东省深圳市坪山区马峦街道坪环社区和平路12号3栋501室",
            "坪山区东纵路188号",
            "深圳市坪山区金地朗悦花园3栋1201室",
            "湖南省长沙市岳麓区麓山南路2号（南门）",
        ],
        [
            "坪山区",  # too short
            "深圳市坪山区马峦街道办事处",  # an organisation
            "深圳市坪山区人民医院",
            "市民反映小区噪音，请处理。",  # free text
            "No. 12 Heping Road",
            "和平路",
            "今天天气很好我们去公园",
        ],
    ),
    "vehicle_plate_valid": (
        ["粤B12345", "京A·88888", "粤BD12345", "粤B12345F", "粤B1234学", "沪AF12345"],
        [
            "粤I12345",  # no I
            "粤B1234",  # too short
            "粤B123456",  # 6 characters but not a new-energy plate
            "AB12345",  # no province
            "粤b12345",
            "港B12345",  # not a mainland province abbreviation
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_recogniser_accepts_its_values_and_refuses_look_alikes(name: str) -> None:
    check = getattr(ids, name)
    true_cases, false_cases = CASES[name]
    assert valid(check, true_cases) == [True] * len(true_cases)
    assert valid(check, false_cases) == [False] * len(false_cases), [
        value for value, ok in zip(false_cases, valid(check, false_cases), strict=True) if ok
    ]


def test_recognisers_keep_the_index_treat_nulls_as_invalid_and_take_any_column() -> None:
    series = pd.Series(["11010519491231002X", None, "110105194912310020"], index=[7, 3, 9], dtype=object)
    assert ids.resident_id_valid(series).to_dict() == {7: True, 3: False, 9: False}
    assert ids.resident_id_valid(np.array(["11010519491231002X", "x"])).tolist() == [True, False]
    chunked = pa.chunked_array([["13812345678"], [None, "12812345678"]])
    assert ids.phone_valid(chunked).tolist() == [True, False, False]
    assert ids.phone_valid(pa.array([13812345678, None], pa.int64())).tolist() == [True, False]
    assert ids.phone_valid(pd.Series([13812345678.0, np.nan])).tolist() == [True, False]  # read with gaps
    assert ids.uscc_valid(pd.Series([], dtype=object)).tolist() == []
    assert ids.bank_card_valid(pd.Series(["4111111111111111", 42], dtype=object)).tolist() == [True, False]
    arrow_backed = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([["91350100M000100Y43"], ["x", None]])))
    assert ids.uscc_valid(arrow_backed).tolist() == [True, False, False]  # as Great Expectations may pass a column


def test_check_digits_agree_with_a_plain_python_computation() -> None:
    rng = random.Random(5)
    values = ["".join(rng.choices("0123456789", k=17)) + rng.choice("0123456789X") for _ in range(3000)]
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

    def expected(value: str) -> bool:
        return "10X98765432"[sum(int(d) * w for d, w in zip(value, weights, strict=False)) % 11] == value[17]

    assert ids.resident_id_valid(pd.Series(values)).tolist() == [expected(value) for value in values]
    cards = [
        "".join(rng.choices("123456789", k=1) + rng.choices("0123456789", k=rng.randint(12, 18))) for _ in range(3000)
    ]

    def luhn(value: str) -> bool:
        doubled = [int(c) * (2 if i % 2 else 1) for i, c in enumerate(reversed(value))]
        return sum(d - 9 if d > 9 else d for d in doubled) % 10 == 0

    assert ids.bank_card_valid(pd.Series(cards)).tolist() == [luhn(card) for card in cards]


def test_the_ingest_expectations_use_the_same_functions() -> None:
    gx_checks = pytest.importorskip("catalog.ingest.gx_checks")
    assert gx_checks.resident_id_valid is ids.resident_id_valid
    assert gx_checks.uscc_valid is ids.uscc_valid


# --- profile_field -------------------------------------------------------------------------------------------
def phones(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return ["1" + rng.choice("3456789") + "".join(rng.choices("0123456789", k=9)) for _ in range(count)]


def test_an_under_declared_phone_field_gets_a_finding_with_masked_evidence() -> None:
    values: list[str | None] = [*phones(950), *["无"] * 30, *[None] * 200, *[""] * 20]
    profile = profile_field(values, S.NONE, 1, SCHEME)

    assert (profile.values, profile.nulls, profile.sampled, profile.blank_in_sample) == (1200, 200, 980, 20)
    finding = profile.finding
    assert finding is not None
    assert finding.detected_type is S.PHONE
    assert finding.share == pytest.approx(950 / 980)
    assert finding.suggested_level == 3
    assert finding.reasons == (FindingReason.TYPE_DIFFERS, FindingReason.LEVEL_BELOW_MINIMUM)
    assert len(finding.examples) == 3
    for example in finding.examples:
        assert re.fullmatch(r"1[3-9][0-9]\*{4}[0-9]{4}", example)
        assert example not in values


def test_a_correctly_declared_field_gets_no_finding() -> None:
    assert profile_field(phones(500), S.PHONE, 3, SCHEME).finding is None
    assert profile_field(phones(500), S.PHONE, 4, SCHEME).finding is None
    ids_column = pd.Series(["11010519491231002X", "440307195307144048"] * 100)
    profile = profile_field(ids_column, S.RESIDENT_ID, 3, SCHEME)
    assert profile.finding is None
    assert profile.detected_type() is S.RESIDENT_ID
    assert profile.detections[0].examples == ("1101**********002X", "4403**********4048")


def test_a_field_of_another_type_at_a_sufficient_level_differs_in_type_only() -> None:
    finding = profile_field(phones(300), S.IDENTIFIER, 4, SCHEME).finding
    assert finding is not None
    assert (finding.detected_type, finding.reasons, finding.suggested_level) == (
        S.PHONE,
        (FindingReason.TYPE_DIFFERS,),
        4,
    )


def test_a_mixed_column_below_the_threshold_gets_no_finding_unless_the_threshold_is_lowered() -> None:
    mixed = phones(500) + [f"订单{number:08d}" for number in range(500)]
    profile = profile_field(mixed, S.NONE, 1, SCHEME)
    assert profile.finding is None
    assert profile.detected_type() is None
    assert profile.detections[0].semantic_type is S.PHONE
    assert profile.detections[0].share == pytest.approx(0.5)
    lowered = profile_field(mixed, S.NONE, 1, SCHEME, DetectionSettings(threshold=0.4))
    assert lowered.finding is not None and lowered.finding.detected_type is S.PHONE


def test_a_few_values_repeated_are_not_taken_for_names() -> None:
    code_list = pd.Series(["王伟", "李娜", "张敏"] * 400)
    profile = profile_field(code_list, S.CODE_LIST, 1, SCHEME)
    assert profile.distinct_in_sample == 3
    assert profile.detections == ()
    assert profile.finding is None


def test_names_addresses_and_plates_are_found_and_shown_masked() -> None:
    rng = random.Random(3)
    given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"
    names = [rng.choice("王李张刘陈杨黄赵吴周") + "".join(rng.choices(given, k=2)) for _ in range(400)]
    name_finding = profile_field(names, S.FREE_TEXT, 1, SCHEME).finding
    assert name_finding is not None and name_finding.detected_type is S.PERSON_NAME
    assert all(re.fullmatch(r"[王李张刘陈杨黄赵吴周]\*\*", example) for example in name_finding.examples)

    addresses = [f"深圳市坪山区马峦街道坪环社区和平路{number}号" for number in range(1, 301)]
    address_finding = profile_field(addresses, S.NONE, 1, SCHEME).finding
    assert address_finding is not None and address_finding.detected_type is S.ADDRESS
    assert address_finding.suggested_level == 2
    assert address_finding.examples[0] == "深圳市坪山区***"

    plates = [f"粤B{number:05d}" for number in range(300)]
    plate_finding = profile_field(pa.array(plates), S.NONE, 1, SCHEME).finding
    assert plate_finding is not None and plate_finding.detected_type is S.VEHICLE_PLATE
    assert plate_finding.examples[0] == "粤******"


def test_the_sample_is_bounded_and_deterministic() -> None:
    values = pa.chunked_array([phones(15_000, seed=1), phones(15_000, seed=2)])
    settings = DetectionSettings(sample_size=2_000)
    first = profile_field(values, S.NONE, 1, SCHEME, settings)
    assert (first.values, first.sampled) == (30_000, 2_000)
    assert profile_field(values, S.NONE, 1, SCHEME, settings) == first
    other_seed = profile_field(values, S.NONE, 1, SCHEME, DetectionSettings(sample_size=2_000, seed=1))
    assert other_seed.detections[0].examples != first.detections[0].examples


def test_an_empty_or_all_null_field_has_no_detections() -> None:
    for values in ([], [None, None], pa.array([], pa.string()), ["", "  "]):
        profile = profile_field(values, S.NONE, 1, SCHEME)
        assert profile.detections == () and profile.finding is None and profile.sampled == 0
