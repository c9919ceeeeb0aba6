"""Detection benchmark: precision and recall of the sensitive-field detection on a labelled data set, and the
cost of profiling.

A seeded generator writes 104 fields x 10,000 rows with known semantic types: resident IDs, unified social
credit codes, phones (mobiles written in the usual ways, and landlines), bank cards, e-mail addresses, person
names, street addresses and vehicle plates, with nulls and a minority of dirty values in some fields, and decoys
(label ``none``): digit strings of ID and card length that fail their checks, 11-digit numbers with a wrong
prefix, zero-padded 11- and 12-digit numbers, service numbers (400, 95xxx), 12-digit division codes, order
numbers, free text, organisation names, short words, codes, code lists, dates, amounts and counts. Each field is profiled with
``catalog.classification.detection.profile_field`` (as an Arrow column, as ingestion holds it) and its detected
type (the best type whose share reaches the threshold, else none) is compared with its label.

    uv run python bench/detection_bench.py                 # 104 fields x 10,000 rows, seed 1
    uv run python bench/detection_bench.py --seed 7 --rows 20000 --verbose

Targets (issue 5): precision and recall >= 0.95 for resident_id, uscc, phone, bank_card and email; the others
are reported. ``--strict`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import string
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalog_bench import machine_facts

from catalog.classification.detection import DetectionSettings, profile_field
from catalog.classification.schemas import ClassificationScheme, LevelDeclaration
from catalog.classification.types import SemanticType as S

# fmt: off
TARGET_TYPES = (S.RESIDENT_ID, S.USCC, S.PHONE, S.BANK_CARD, S.EMAIL)
REPORTED_TYPES = (*TARGET_TYPES, S.PERSON_NAME, S.ADDRESS, S.VEHICLE_PLATE)
TARGET = 0.95
SCHEME = ClassificationScheme(
    levels=[
        LevelDeclaration(level=level, code=code, name_zh=code, name_en=code)
        for level, code in [(1, "public"), (2, "internal"), (3, "sensitive"), (4, "restricted")]
    ],
    minimum_levels={S.RESIDENT_ID: 3, S.PHONE: 3, S.PERSON_NAME: 3, S.EMAIL: 3, S.BANK_CARD: 3, S.ADDRESS: 2, S.VEHICLE_PLATE: 2},
)  # the seeded scheme of the first migration

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
REGIONS = ["440310", "440307", "440303", "440304", "440305", "440306", "110105", "310115", "420106", "510107", "430102", "360102", "450103", "350203"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤赖洪萧代时"
COMPOUND = ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "司徒", "慕容"]
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌波宇浩凯健俊帆帅旭宁晨阳欣怡梓涵子轩雨婷思琪佳琪诗雨嘉怡一诺晓东海燕春梅丹凤"
STREETS = {"坪山街道": ["六和社区", "坪山社区", "和平社区"], "马峦街道": ["坪环社区", "马峦社区", "江岭社区"], "碧岭街道": ["碧岭社区", "沙湖社区", "汤坑社区"], "龙田街道": ["老坑社区", "南布社区", "竹坑社区"], "坑梓街道": ["金沙社区", "秀新社区", "沙田社区"], "石井街道": ["田头社区", "金龟社区", "石井社区"]}
ROADS = ["深汕路", "东纵路", "坪山大道", "龙兴北路", "金牛东路", "丹梓中路", "锦龙大道", "比亚迪路", "新横坪公路", "汤坑一路", "振环路", "体育一路"]
ESTATES = ["金地朗悦花园", "中海珑湾", "万科金域缇香", "星河盛世", "龙光玖云著", "佳兆业城市广场", "招商花园城", "六和城"]
CITIES = ["广东省深圳市", "深圳市", "湖南省长沙市", "江西省南昌市", "广西壮族自治区南宁市", "四川省成都市"]
DISTRICTS = ["坪山区", "龙岗区", "福田区", "南山区", "宝安区", "岳麓区", "东湖区", "武侯区"]
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
PINYIN = ["chen", "li", "wang", "zhang", "liu", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu", "guo", "lin", "luo", "zheng", "xie", "hua", "min", "wei", "jing", "ping", "hong"]
MAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com", "ps.gov.cn", "sz.gov.cn", "foxmail.com", "139.com"]
COMPLAINT_PHRASES = ["市民反映", "小区门口", "夜间施工噪音扰民", "路灯不亮", "垃圾清运不及时", "占道经营", "请相关部门尽快处理", "已转办街道办", "诉求人要求回复", "排水管道堵塞", "违章停车严重", "楼道消防通道被堵", "希望加强巡查", "已电话联系诉求人", "情况属实", "，", "。", "；"]
GOODS = ["食品", "药品", "化妆品", "医疗器械", "特种设备", "农产品", "建材", "服装", "家电", "五金", "日用品", "文具", "玩具", "汽车配件", "电子产品", "粮油", "水产品", "肉类", "蔬菜", "水果", "酒类", "饮料", "烟草制品", "燃气", "成品油", "化肥", "农药", "种子", "饲料", "兽药", "黄金饰品", "钢材", "水泥", "木材", "石材", "陶瓷", "家具", "布料", "皮革", "纸制品", "塑料制品", "保健食品", "乳制品", "茶叶", "调味品", "冷冻食品", "母婴用品", "眼镜", "手机", "电动自行车"]
# Adversarial: short words chosen to start with a surname character.
WORDS = ["黄金", "白酒", "石油", "钢材", "水泥", "木材", "布料", "高压", "周转", "方便面", "金属", "江砂", "林木", "马铃薯", "朱砂", "胡椒", "罗非鱼", "许可", "韩国", "余额", "汪洋", "陆运", "毛巾", "龙眼", "蒋介", "常规", "温度", "康复", "文具", "安全", "齐全", "乔木", "于是", "庄园", "史料", "宋体", "唐装", "杜鹃", "叶菜", "苏打", "丁香", "程序", "钟表", "谭木", "雷达", "蓝莓", "房产", "华为", "柏油", "梅花", "冷链"]
STATUSES = ["已受理", "处理中", "已办结", "不予受理", "已退回", "待审核", "已撤销"]
COMMUNITIES = ["坪环社区", "金龟社区", "六和社区", "沙湖社区", "汤坑社区", "马峦社区", "碧岭社区", "江岭社区"]
ORG_SUFFIXES = ["科技有限公司", "实业有限公司", "贸易有限公司", "餐饮管理有限公司", "建筑工程有限公司", "物业服务有限公司"]
DIRTY = ["无", "不详", "-", "0", "待补充", "N/A", "暂无"]
# fmt: on


def id_check(body: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def uscc_check(body: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def luhn_complete(body: str) -> str:
    return body + next(d for d in "0123456789" if luhn_ok(body + d))


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choices(string.digits, k=count))


# --- generators of one value of each kind --------------------------------------------------------------------
def resident_id(rng: random.Random) -> str:
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 80))
    body = rng.choice(REGIONS) + born.strftime("%Y%m%d") + digits(rng, 3)
    return body + id_check(body)


def uscc(rng: random.Random) -> str:
    head = rng.choice(["91", "92", "93", "11", "12", "51", "52", "53", "31"])
    organisation = "".join(rng.choices(USCC_ALPHABET, k=9))
    body = head + rng.choice(REGIONS) + organisation
    return body + uscc_check(body)


def phone(rng: random.Random) -> str:
    number = "1" + rng.choice("3456789") + digits(rng, 9)
    style = rng.random()
    if style < 0.03:
        return "+86 " + number
    if style < 0.04:
        return f"+86 {number[:3]} {number[3:7]} {number[7:]}"
    if style < 0.05:
        return "0086" + number
    if style < 0.07:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    return number


def bank_card(rng: random.Random) -> str:
    prefix, length = rng.choice(
        [
            ("622202", 19),
            ("622848", 19),
            ("621700", 19),
            ("622588", 16),
            ("436742", 16),
            ("518710", 16),
            ("625965", 16),
            ("622609", 16),
        ]
    )
    return luhn_complete(prefix + digits(rng, length - len(prefix) - 1))


def email(rng: random.Random) -> str:
    local = (
        rng.choice(PINYIN)
        + rng.choice(["", ".", "_"])
        + rng.choice([*PINYIN, ""])
        + rng.choice(["", digits(rng, rng.randint(1, 4))])
    )
    if rng.random() < 0.3:
        local = digits(rng, rng.randint(6, 10))  # QQ numbers
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def person_name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND) if rng.random() < 0.02 else rng.choice(SURNAMES)
    given = "".join(rng.choices(GIVEN, k=1 if rng.random() < 0.35 else 2))
    return surname + given


def address(rng: random.Random) -> str:
    street = rng.choice(list(STREETS))
    community = rng.choice(STREETS[street])
    shape = rng.random()
    if shape < 0.4:
        return (
            f"{rng.choice(CITIES)}{rng.choice(DISTRICTS)}{street}{community}{rng.choice(ROADS)}{rng.randint(1, 999)}号"
        )
    if shape < 0.7:
        return f"深圳市坪山区{street}{rng.choice(ESTATES)}{rng.randint(1, 30)}栋{rng.randint(1, 33)}{rng.randint(1, 8):02d}室"
    if shape < 0.9:
        return f"坪山区{rng.choice(ROADS)}{rng.randint(1, 999)}号{rng.choice(['', 'A座', 'B座'])}{rng.randint(1, 30)}楼"
    return f"{rng.choice(CITIES)}{rng.choice(DISTRICTS)}{street}{community}{rng.randint(1, 12)}巷{rng.randint(1, 60)}号"


def vehicle_plate(rng: random.Random) -> str:
    province = "粤" if rng.random() < 0.7 else rng.choice(PROVINCES)
    letter = rng.choice(PLATE_LETTERS)
    if rng.random() < 0.2:  # new-energy plates
        return province + letter + rng.choice("DF") + rng.choice(PLATE_LETTERS + string.digits) + digits(rng, 4)
    separator = rng.choice(["", "", "", "", "", "", "·", "-", " "])
    return province + letter + separator + "".join(rng.choices(PLATE_LETTERS + string.digits * 3, k=5))


def failing_id_digits(rng: random.Random) -> str:
    """18 digits shaped like a resident ID, with a wrong check character."""
    value = resident_id(rng)
    return value[:17] + rng.choice([c for c in "0123456789" if c != value[17]])


def failing_card_digits(rng: random.Random) -> str:
    body = rng.choice(["6222", "6228", "4367"]) + digits(rng, rng.choice([12, 15]))
    return body if not luhn_ok(body) else body[:-1] + str((int(body[-1]) + 1) % 10)


def wrong_prefix_phone(rng: random.Random) -> str:
    return "1" + rng.choice("0122") + digits(rng, 9)


def landline(rng: random.Random) -> str:
    area, local = rng.choice(["0755", "020", "010", "0731", "0898"]), rng.choice("23678") + digits(rng, 7)
    style = rng.random()
    if style < 0.1:
        return f"({area}){local}"
    if style < 0.15:
        return f"+86 {area[1:]} {local}"
    if style < 0.2:
        return f"{area}-{local}-{digits(rng, 3)}"
    return area + rng.choice(["-", "-", ""]) + local


def zero_padded_number(rng: random.Random) -> str:
    width = rng.choice([11, 12])
    return f"{rng.randrange(10 ** (width - 1)):0{width}d}"


def service_number(rng: random.Random) -> str:
    return rng.choice([f"400-{digits(rng, 3)}-{digits(rng, 4)}", "800" + digits(rng, 7), "955" + digits(rng, 2)])


def division_code(rng: random.Random) -> str:
    return rng.choice(REGIONS) + f"{rng.randint(1, 12):03d}{rng.randint(1, 40):03d}"


def order_number(rng: random.Random) -> str:
    day = date(2023, 1, 1) + timedelta(days=rng.randrange(700))
    return rng.choice(["", "DD", "SQ", "GD"]) + day.strftime("%Y%m%d") + digits(rng, rng.choice([6, 8, 10]))


def free_text(rng: random.Random) -> str:
    return "".join(rng.choices(COMPLAINT_PHRASES, k=rng.randint(3, 9))) + "。"


def organisation(rng: random.Random) -> str:
    return f"深圳市{rng.choice(['坪山区', ''])}{rng.choice(GIVEN)}{rng.choice(GIVEN)}{rng.choice(ORG_SUFFIXES)}"


def code(rng: random.Random) -> str:
    return rng.choice("ABCDEFGH") + digits(rng, 3) + rng.choice(["", "-" + digits(rng, 2)])


def a_date(rng: random.Random) -> str:
    return (date(2000, 1, 1) + timedelta(days=rng.randrange(9000))).isoformat()


def amount(rng: random.Random) -> str:
    return f"{rng.lognormvariate(6, 2):.2f}"


def count(rng: random.Random) -> str:
    return str(rng.randint(0, 100_000))


def wrong_prefix_uscc(rng: random.Random) -> str:
    value = uscc(rng)
    return value[:17] + rng.choice([c for c in USCC_ALPHABET if c != value[17]])


def plate_like_code(rng: random.Random) -> str:
    return rng.choice("ABCDEFGH") + rng.choice("ABCDEFGH") + digits(rng, 5)


Generator = Callable[[random.Random], str]


@dataclass(frozen=True)
class Kind:
    label: S  # S.NONE for decoys
    name: str
    make: Generator
    fields: int


KINDS = [
    Kind(S.RESIDENT_ID, "resident ID", resident_id, 9),
    Kind(S.USCC, "USCC", uscc, 8),
    Kind(S.PHONE, "mobile phone", phone, 9),
    Kind(S.BANK_CARD, "bank card", bank_card, 8),
    Kind(S.EMAIL, "e-mail", email, 8),
    Kind(S.PERSON_NAME, "person name", person_name, 8),
    Kind(S.ADDRESS, "address", address, 7),
    Kind(S.VEHICLE_PLATE, "vehicle plate", vehicle_plate, 7),
    Kind(S.NONE, "18 digits failing the ID check", failing_id_digits, 3),
    Kind(S.NONE, "card-length digits failing Luhn", failing_card_digits, 3),
    Kind(S.NONE, "USCC shape failing the check", wrong_prefix_uscc, 2),
    Kind(S.NONE, "11 digits with a wrong prefix", wrong_prefix_phone, 2),
    Kind(S.PHONE, "landline", landline, 3),
    Kind(S.NONE, "zero-padded 11 or 12 digits", zero_padded_number, 2),
    Kind(S.NONE, "service numbers", service_number, 1),
    Kind(S.NONE, "12-digit division codes", division_code, 1),
    Kind(S.NONE, "order number", order_number, 3),
    Kind(S.NONE, "free text", free_text, 3),
    Kind(S.NONE, "organisation name", organisation, 2),
    Kind(S.NONE, "goods categories", lambda rng: rng.choice(GOODS), 2),
    Kind(S.NONE, "words with surname initials", lambda rng: rng.choice(WORDS), 1),
    Kind(S.NONE, "status code list", lambda rng: rng.choice(STATUSES), 1),
    Kind(S.NONE, "community code list", lambda rng: rng.choice(COMMUNITIES), 1),
    Kind(S.NONE, "code", code, 2),
    Kind(S.NONE, "plate-like code", plate_like_code, 1),
    Kind(S.NONE, "date", a_date, 2),
    Kind(S.NONE, "date and time", lambda rng: a_date(rng) + f" {rng.randrange(24):02d}:{rng.randrange(60):02d}:00", 1),
    Kind(S.NONE, "amount", amount, 2),
    Kind(S.NONE, "count", count, 2),
]


@dataclass(frozen=True)
class LabelledField:
    name: str
    kind: str
    label: S
    values: pa.Array


def generate_field(rng: random.Random, kind: Kind, rows: int, name: str) -> LabelledField:
    """One field: its kind's values, with nulls in about a third of the fields and dirty values (placeholders,
    values of another kind, mistyped characters) up to 12 % in about half of them."""
    null_share = rng.choice([0.0, 0.0, 0.05, 0.3])
    dirty_share = rng.choice([0.0, 0.0, 0.02, 0.06, 0.12])
    values: list[str | None] = []
    for _ in range(rows):
        draw = rng.random()
        if draw < null_share:
            values.append(None)
        elif draw < null_share + dirty_share:
            values.append(dirty(rng, kind.make(rng)))
        else:
            values.append(kind.make(rng))
    return LabelledField(name, kind.name, kind.label, pa.array(values, pa.string()))


def dirty(rng: random.Random, value: str) -> str:
    choice = rng.random()
    if choice < 0.4:
        return rng.choice(DIRTY)
    if choice < 0.7 and len(value) > 2:  # one character mistyped
        position = rng.randrange(len(value))
        return value[:position] + rng.choice(string.digits + "xX") + value[position + 1 :]
    return " " if choice < 0.85 else value[: len(value) // 2]


def generate_dataset(rows: int, seed: int) -> list[LabelledField]:
    rng = random.Random(seed)
    kinds = [kind for kind in KINDS for _ in range(kind.fields)]
    rng.shuffle(kinds)
    return [generate_field(rng, kind, rows, f"field_{number:03d}") for number, kind in enumerate(kinds, 1)]


@dataclass
class Scores:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    def precision(self) -> float | None:
        predicted = self.true_positive + self.false_positive
        return self.true_positive / predicted if predicted else None

    def recall(self) -> float | None:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else None


@dataclass(frozen=True)
class Result:
    field: LabelledField
    detected: S
    shares: dict[S, float]


def score(results: list[Result]) -> dict[S, Scores]:
    scores = {semantic_type: Scores() for semantic_type in REPORTED_TYPES}
    for result in results:
        field, detected = result.field, result.detected
        if field.label is detected:
            if detected is not S.NONE:
                scores[detected].true_positive += 1
            continue
        if detected is not S.NONE:
            scores[detected].false_positive += 1
        if field.label is not S.NONE:
            scores[field.label].false_negative += 1
    return scores


def run(
    fields: list[LabelledField], settings: DetectionSettings, verbose: bool, report: bool = True
) -> tuple[list[Result], float]:
    results = []
    started = time.perf_counter()
    for field in fields:
        profile = profile_field(field.values, S.NONE, 1, SCHEME, settings)
        detected = profile.detected_type(settings.threshold) or S.NONE
        results.append(Result(field, detected, {d.semantic_type: d.share for d in profile.detections}))
        if verbose or (report and detected is not field.label):
            shares = ", ".join(f"{d.semantic_type.value} {d.share:.3f}" for d in profile.detections[:3]) or "-"
            mark = "  " if detected is field.label else "XX"
            print(
                f"{mark} {field.name} {field.kind:32} label {field.label.value:13} detected {detected.value:13} shares: {shares}  e.g. {profile.detections[0].examples if profile.detections else ()}"
            )
    return results, time.perf_counter() - started


def margins(results: list[Result], semantic_type: S) -> tuple[float, float]:
    """The lowest share of the type among the fields labelled with it, the highest among the other fields."""
    own = [result.shares.get(semantic_type, 0.0) for result in results if result.field.label is semantic_type]
    others = [result.shares.get(semantic_type, 0.0) for result in results if result.field.label is not semantic_type]
    return min(own, default=0.0), max(others, default=0.0)


def print_scores(results: list[Result]) -> bool:
    def shown(value: float | None) -> str:
        return "  n/a" if value is None else f"{value:5.3f}"

    met = True
    print(
        f"{'type':14} {'fields':>6} {'TP':>3} {'FP':>3} {'FN':>3} {'precision':>9} {'recall':>7}  {'min share':>9} {'max other':>9}  target"
    )
    for semantic_type, result in score(results).items():
        lowest, highest_other = margins(results, semantic_type)
        precision, recall = result.precision(), result.recall()
        target = ""
        if semantic_type in TARGET_TYPES:
            passed = (precision or 0) >= TARGET and (recall or 0) >= TARGET
            met &= passed
            target = f">= {TARGET} both: {'PASS' if passed else 'MISS'}"
        actual = result.true_positive + result.false_negative
        print(
            f"{semantic_type.value:14} {actual:6} {result.true_positive:3} {result.false_positive:3} {result.false_negative:3} {shown(precision):>9} {shown(recall):>7}  {lowest:9.3f} {highest_other:9.3f}  {target}"
        )
    return met


def large_column_seconds(rows: int, settings: DetectionSettings) -> float:
    rng = random.Random(99)
    column = pa.array([phone(rng) for _ in range(rows)], pa.string())
    started = time.perf_counter()
    profile_field(column, S.NONE, 1, SCHEME, settings)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="rows per field")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=DetectionSettings().threshold)
    parser.add_argument("--sample", type=int, default=DetectionSettings().sample_size, help="values sampled per field")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over all fields; the best is reported")
    parser.add_argument("--verbose", action="store_true", help="a line per field (misclassified fields always)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    settings = DetectionSettings(sample_size=args.sample, threshold=args.threshold)
    print("\n".join(machine_facts()))
    started = time.perf_counter()
    fields = generate_dataset(args.rows, args.seed)
    values = sum(len(field.values) for field in fields)
    print(
        f"generated {len(fields)} fields x {args.rows:,} rows (seed {args.seed}) in {time.perf_counter() - started:.1f} s"
    )
    results, seconds = run(fields, settings, args.verbose)
    for _ in range(args.repeat - 1):
        seconds = min(seconds, run(fields, settings, verbose=False, report=False)[1])
    met = print_scores(results)
    print(
        "min share: the lowest match share among the fields of that type; max other: the highest among all other fields"
    )
    print(
        f"profiling: {seconds:.2f} s for {values:,} values (best of {args.repeat}), {seconds / values * 1e6:.2f} s per million values, {seconds / len(fields) * 1000:.1f} ms per field (sample {settings.sample_size:,}, threshold {settings.threshold})"
    )
    big = large_column_seconds(1_000_000, settings)
    print(f"one column of 1,000,000 values (sampled to {settings.sample_size:,}): {big:.2f} s")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    if args.strict and not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
