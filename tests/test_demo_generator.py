"""The demo's sample exports are the output of the project's own generator (catalog/demo/generate.py), and nothing
in the project reads outside the repository (issue 12: a clone of this repository alone runs and tests)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from catalog.classification.identifiers import resident_id_valid, uscc_valid
from catalog.demo import generate
from catalog.ingest.decode import decode_export
from catalog.ingest.service import ingest_export
from tests.catalog.helpers import import_demo

REPOSITORY = Path(__file__).resolve().parents[1]
DROPPED = ["psga_population_20261120.csv", "psga_population_20261121.csv", "scjg_enterprise_20261120.csv",
           "zsj_complaints_20261120.json"]  # fmt: skip
FAULTY_POPULATION = "faulty/psga_population_20261122.csv"
FAULTY_ENTERPRISE = "faulty/scjg_enterprise_20261121.csv"


def committed(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def first_column(data: bytes, encoding: str) -> pd.Series:
    rows = list(csv.reader(io.StringIO(data.decode(encoding))))
    return pd.Series([row[0] for row in rows[1:]])


def test_the_committed_samples_are_exactly_the_generators_output(tmp_path: Path) -> None:
    generate.write_samples(tmp_path)

    assert committed(generate.SAMPLES) == committed(tmp_path)
    assert generate.exports() == committed(tmp_path)  # and a second run gives the same bytes


def test_the_exports_are_in_the_encodings_departments_send() -> None:
    exports = generate.exports()
    plain, with_bom = exports["psga_population_20261120.csv"], exports["psga_population_20261121.csv"]
    assert not plain.startswith(b"\xef\xbb\xbf") and plain.decode("utf-8")
    assert with_bom.startswith(b"\xef\xbb\xbf") and with_bom[3:].decode("utf-8")
    enterprise = exports["scjg_enterprise_20261120.csv"]
    with pytest.raises(UnicodeDecodeError):
        enterprise.decode("utf-8")
    assert decode_export(enterprise).encoding == "gb18030"
    assert len(json.loads(exports["zsj_complaints_20261120.json"])) == 400


def test_check_characters_are_valid_in_the_drop_folder_exports_and_wrong_in_the_faulty_ones() -> None:
    exports = generate.exports()
    for name in DROPPED[:2]:
        assert resident_id_valid(first_column(exports[name], "utf-8-sig")).all()
    assert uscc_valid(first_column(exports["scjg_enterprise_20261120.csv"], "gb18030")).all()

    assert (~resident_id_valid(first_column(exports[FAULTY_POPULATION], "utf-8"))).sum() == 2
    assert (~uscc_valid(first_column(exports[FAULTY_ENTERPRISE], "gb18030"))).sum() == 3


def test_the_check_characters_follow_the_standards() -> None:
    # The examples of GB 11643 and a registered enterprise's code (GB 32100), computed by hand.
    assert generate.resident_id_check("11010519491231002") == "X"
    assert generate.resident_id_check("44052418800101001") == "4"
    assert generate.uscc_check("91350100M000100Y4") == "3"
    assert generate.wrong_check("11010519491231002X", "0123456789X") == "110105194912310020"


@pytest.mark.parametrize(("code", "name", "field"), [
    ("PSGA-RK-0001", FAULTY_POPULATION, "公民身份号码"),
    ("SCJG-FR-0001", FAULTY_ENTERPRISE, "统一社会信用代码"),
])  # fmt: skip
def test_a_faulty_export_is_quarantined_naming_its_check(
    session: Session, tmp_path: Path, code: str, name: str, field: str
) -> None:
    import_demo(session)
    data = (generate.SAMPLES / name).read_bytes()

    outcome = ingest_export(session, code, data, Path(name).name, raw_dir=tmp_path, trigger="test")

    assert outcome.outcome == "quarantined"
    assert any(reason.startswith(f"{field}: ") and "check" in reason for reason in outcome.reasons), outcome.reasons


def test_the_demo_puts_only_the_good_exports_into_drop_folders(datashare: object, tmp_path: Path) -> None:
    datashare("demo")  # type: ignore[operator]
    dropped = sorted(path.name for path in (tmp_path / "data" / "drop").rglob("*") if path.is_file())
    assert dropped == sorted(DROPPED)


def test_nothing_reads_outside_the_repository() -> None:
    outside = [("../" + "shared").encode(), ("shared/" + "samples").encode()]
    files = [
        path
        for folder in ("api", "catalog", "dags", "tests", "bench", "docker", "policies", ".ci")
        for path in (REPOSITORY / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    files += [REPOSITORY / "dev", REPOSITORY / "pyproject.toml"]
    found = [f"{path.relative_to(REPOSITORY)}: {word.decode()}" for path in files for word in outside
             if word in path.read_bytes()]  # fmt: skip
    assert found == []
