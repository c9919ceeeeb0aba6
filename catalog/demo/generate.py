"""The demo's sample exports, generated: synthetic exports of the demo departments' systems.

``python -m catalog.demo.generate [DIR]`` writes them (default: catalog/demo/samples/, the committed files; a test
regenerates them and compares byte for byte). Deterministic: every export has its own seeded ``random.Random``,
and no value comes from the clock or the machine. Names, phones, addresses and identity numbers are made up; the
code lists come from the demo catalog, so every value conforms to its declared field.

In the drop folders (`./dev run` copies them there), all check characters valid:

* ``psga_population_20261120.csv``: the police's population register, UTF-8, 500 rows;
* ``psga_population_20261121.csv``: the next day's export, UTF-8 with BOM, 520 rows (the same people, a few
  with a new phone number, and 20 more);
* ``scjg_enterprise_20261120.csv``: market regulation's enterprise register, GB18030, 300 rows;
* ``zsj_complaints_20261120.json``: the service centre's residents' complaints, a JSON array, 400 cases.

Under ``faulty/`` (never copied into a drop folder; for `datashare ingest` by hand), the checks' failures:

* ``psga_population_20261122.csv``: UTF-8, 520 rows, two resident IDs with a wrong check character;
* ``scjg_enterprise_20261121.csv``: GB18030, 300 rows, three USCCs with a wrong check character.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from catalog.classification.identifiers import (
    RESIDENT_ID_CHECK,
    RESIDENT_ID_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
)
from catalog.declarations.service import read_catalog_file
from catalog.demo import CATALOG, SAMPLES
from catalog.items.schemas import ItemDeclaration

FAULTY = "faulty"  # the subfolder of exports that fail a check, never copied into a drop folder

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN_NAME_CHARACTERS = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华兰红玉文辉力建国志鹏宇婷雪琳晨浩然思雨欣怡子涵"
DISTRICTS = {"440303": "罗湖区", "440307": "龙岗区", "440310": "坪山区"}  # resident ID area code: district
ROADS = ("坪山大道", "深汕路", "东纵路", "金碧路", "龙兴南路", "锦龙大道", "丹梓大道", "比亚迪路", "宝山路")
INDUSTRIES = ("科技", "贸易", "电子", "物流", "餐饮管理", "建筑工程", "生物医药", "新能源", "文化传播")
MOBILE_PREFIXES = ("13", "14", "15", "16", "17", "18", "19")
TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Resident:
    resident_id: str
    name: str
    sex: str
    born: date
    phone: str
    address: str
    community: str
    updated_at: datetime

    def row(self) -> list[str]:
        return [self.resident_id, self.name, self.sex, self.born.isoformat(), self.phone, self.address,
                self.community, self.updated_at.strftime(TIME)]  # fmt: skip


def resident_id_check(first17: str) -> str:
    """GB 11643's check character of the first 17 digits."""
    total = sum(int(digit) * int(weight) for digit, weight in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return chr(RESIDENT_ID_CHECK[total % 11])


def uscc_check(first17: str) -> str:
    """GB 32100's check character of the first 17 characters."""
    total = sum(USCC_ALPHABET.index(char) * int(weight) for char, weight in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def wrong_check(value: str, alphabet: str) -> str:
    """``value`` with its last (check) character replaced by the next one of ``alphabet``: never valid."""
    return value[:-1] + alphabet[(alphabet.index(value[-1]) + 1) % len(alphabet)]


def allowed_values(item: ItemDeclaration, field: str) -> list[str]:
    declared = next(f for f in item.fields if f.name == field)
    return [str(value) for value in declared.allowed_values or []]


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN_NAME_CHARACTERS, k=rng.choice((1, 2, 2))))


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**9):09d}"


def day_between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


# --- the population register (psga) -------------------------------------------------------------------------


def residents(rng: random.Random, count: int, communities: Sequence[str], updated_at: datetime,
              taken: set[str]) -> list[Resident]:  # fmt: skip
    people: list[Resident] = []
    while len(people) < count:
        area = rng.choice(sorted(DISTRICTS))
        born = day_between(rng, date(1940, 1, 1), date(2021, 12, 31))
        sequence = rng.randrange(1000)  # its last digit: odd for men, even for women
        first17 = f"{area}{born:%Y%m%d}{sequence:03d}"
        resident_id = first17 + resident_id_check(first17)
        if resident_id in taken:
            continue
        taken.add(resident_id)
        address = f"深圳市{DISTRICTS[area]}{rng.choice(ROADS)}{rng.randrange(1, 400)}号"
        people.append(Resident(resident_id, person_name(rng), "男" if sequence % 2 else "女", born, mobile(rng),
                               address, rng.choice(communities), updated_at))  # fmt: skip
    return people


def next_day(rng: random.Random, people: list[Resident], new: int, communities: Sequence[str],
             updated_at: datetime) -> list[Resident]:  # fmt: skip
    """The register a day later: a few people with a new phone number, and ``new`` more people."""
    changed = set(rng.sample(range(len(people)), k=len(people) // 25))
    kept = [replace(person, phone=mobile(rng), updated_at=updated_at) if number in changed else person
            for number, person in enumerate(people)]  # fmt: skip
    return kept + residents(rng, new, communities, updated_at, {person.resident_id for person in people})


def with_wrong_resident_ids(rng: random.Random, people: list[Resident], count: int) -> list[Resident]:
    spoiled = set(rng.sample(range(len(people)), k=count))
    return [replace(person, resident_id=wrong_check(person.resident_id, "0123456789X")) if number in spoiled
            else person for number, person in enumerate(people)]  # fmt: skip


POPULATION_HEADER = ["公民身份号码", "姓名", "性别", "出生日期", "联系电话", "户籍地址", "所属社区", "更新时间"]


# --- the enterprise register (scjg) -------------------------------------------------------------------------


def enterprises(rng: random.Random, count: int, item: ItemDeclaration) -> list[list[str]]:
    statuses, streets = allowed_values(item, "经营状态"), allowed_values(item, "所属街道")
    rows: list[list[str]] = []
    taken: set[str] = set()
    while len(rows) < count:
        # 9: registered with market regulation, 1: an enterprise, 440310: Pingshan; then the organisation code
        first17 = "91440310" + "".join(rng.choices(USCC_ALPHABET, k=9))
        if first17 in taken:
            continue
        taken.add(first17)
        founded = day_between(rng, date(1995, 1, 1), date(2025, 12, 31))
        capital = f"{rng.randrange(10_000, 5_000_000) / 100:.2f}"
        name = f"深圳市{person_name(rng)}{rng.choice(INDUSTRIES)}有限公司"
        rows.append([first17 + uscc_check(first17), name, person_name(rng), founded.isoformat(), capital,
                     rng.choice(statuses), rng.choice(streets)])  # fmt: skip
    return rows


def with_wrong_usccs(rng: random.Random, rows: list[list[str]], count: int) -> list[list[str]]:
    spoiled = set(rng.sample(range(len(rows)), k=count))
    return [[wrong_check(row[0], USCC_ALPHABET), *row[1:]] if number in spoiled else row
            for number, row in enumerate(rows)]  # fmt: skip


ENTERPRISE_HEADER = ["统一社会信用代码", "企业名称", "法定代表人", "成立日期", "注册资本万元", "经营状态", "所属街道"]


# --- the residents' complaints (zsj) ------------------------------------------------------------------------


def complaints(rng: random.Random, count: int, item: ItemDeclaration, exported_at: datetime) -> list[dict[str, str]]:
    kinds, channels = allowed_values(item, "事件类型"), allowed_values(item, "来源渠道")
    handlers = allowed_values(item, "处置部门")
    first = datetime(2026, 11, 1)
    cases = []
    for number in range(count):
        received = first + timedelta(minutes=rng.randrange(int((exported_at - first).total_seconds() // 60)))
        closed = received + timedelta(minutes=rng.randrange(30, 7 * 24 * 60))
        still_open = closed > exported_at or rng.random() < 0.03
        cases.append({
            "事件编号": f"PS{received:%Y%m%d}{number:06d}",
            "事件类型": rng.choice(kinds),
            "来源渠道": rng.choice(channels),
            "受理时间": received.strftime(TIME),
            "办结时间": "" if still_open else closed.strftime(TIME),
            "处置部门": rng.choice(handlers),
            "状态": "处置中" if still_open else "已办结",
            "诉求人电话": mobile(rng),
        })  # fmt: skip
    return cases


# --- the files ----------------------------------------------------------------------------------------------


def csv_text(header: list[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # CRLF line ends, as the departments' systems write them
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def population(people: list[Resident]) -> str:
    return csv_text(POPULATION_HEADER, [person.row() for person in people])


def exports() -> dict[str, bytes]:
    """Every sample export by its path under the samples folder."""
    catalog = {item.code: item for item in read_catalog_file(CATALOG).items}
    communities = allowed_values(catalog["PSGA-RK-0001"], "所属社区")
    rng = random.Random(20261120)
    first_day = residents(rng, 500, communities, datetime(2026, 11, 20, 2), set())
    second_day = next_day(random.Random(20261121), first_day, 20, communities, datetime(2026, 11, 21, 2))
    third_day = with_wrong_resident_ids(random.Random(20261122), second_day, 2)
    enterprise = enterprises(random.Random(32100), 300, catalog["SCJG-FR-0001"])
    spoiled_enterprise = with_wrong_usccs(random.Random(32101), enterprise, 3)
    cases = complaints(random.Random(12345), 400, catalog["ZSJ-MS-0001"], datetime(2026, 11, 20, 9))
    return {
        "psga_population_20261120.csv": population(first_day).encode("utf-8"),
        "psga_population_20261121.csv": population(second_day).encode("utf-8-sig"),
        "scjg_enterprise_20261120.csv": csv_text(ENTERPRISE_HEADER, enterprise).encode("gb18030"),
        "zsj_complaints_20261120.json": json.dumps(cases, ensure_ascii=False, indent=1).encode("utf-8") + b"\n",
        f"{FAULTY}/psga_population_20261122.csv": population(third_day).encode("utf-8"),
        f"{FAULTY}/scjg_enterprise_20261121.csv": csv_text(ENTERPRISE_HEADER, spoiled_enterprise).encode("gb18030"),
    }


def write_samples(folder: Path = SAMPLES) -> list[Path]:
    written = []
    for name, data in exports().items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str]) -> None:
    folder = Path(argv[0]) if argv else SAMPLES
    for path in write_samples(folder):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
