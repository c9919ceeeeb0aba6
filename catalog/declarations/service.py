"""Import and export of catalog files: validate the whole file first, then write all or nothing."""

from __future__ import annotations

import gc
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from catalog.audit import service as audit
from catalog.classification.repository import load_scheme, save_scheme
from catalog.classification.schemas import ClassificationScheme
from catalog.classification.types import SemanticType
from catalog.declarations.schemas import CatalogFile
from catalog.departments.repository import (
    department_ids,
    list_departments,
    save_department,
    source_system_ids,
    to_declaration,
)
from catalog.departments.schemas import DepartmentDeclaration
from catalog.ingest.manifest import rewrite_after_commit
from catalog.items import repository as items_repository
from catalog.items.errors import DeclarationProblem, InvalidDeclaration
from catalog.items.schemas import ItemDeclaration
from catalog.items.service import Actor, SaveReport, as_principal, write_checked_items
from catalog.items.validation import check_items, check_new_statuses, check_status_changes

Entry = TypeVar("Entry", ItemDeclaration, DepartmentDeclaration)
SCHEMA_PATH = Path(__file__).with_name("catalog-file.schema.json")
# Imports that create or change at least this many items refresh the planner statistics.
BULK_CHANGE = 1000


@dataclass(frozen=True)
class ImportReport:
    scheme_changed: bool
    departments_changed: int
    items: SaveReport

    @property
    def changed(self) -> bool:
        return self.scheme_changed or self.departments_changed > 0 or self.items.created + self.items.updated > 0


def import_catalog_file(session: Session, path: Path, actor: Actor, *, by_officer: bool = False) -> ImportReport:
    """Read, validate and import a catalog file, reporting every problem in it at once. ``by_officer``: the edge
    has established that ``actor`` is a data officer, whose import may carry published items (their fields are
    then recorded as approved by that officer)."""
    catalog, problems = _parse_leniently(_read_text(path), source=str(path))
    if catalog is not None:
        problems += check_catalog_file(session, catalog, by_officer=by_officer)
    if problems or catalog is None:
        raise InvalidDeclaration(problems)
    return _write(session, catalog, actor, by_officer)


def read_catalog_file(path: Path) -> CatalogFile:
    return parse_catalog_text(_read_text(path), source=str(path))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidDeclaration([DeclarationProblem(None, None, f"cannot read {path}: {error}")]) from None


def parse_catalog_text(text: str, source: str = "<text>") -> CatalogFile:
    catalog, problems = _parse_leniently(text, source)
    if problems or catalog is None:
        raise InvalidDeclaration(problems)
    return catalog


def _parse_leniently(text: str, source: str) -> tuple[CatalogFile | None, list[DeclarationProblem]]:
    """The file with every item that parses, and the problems of those that do not."""
    with _cyclic_gc_paused():
        return _parse(text, source)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    # Parsing a 10k-item file builds millions of objects none of which form cycles; the cyclic
    # collector would scan them again and again (half the parse time in the benchmark).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse(text: str, source: str) -> tuple[CatalogFile | None, list[DeclarationProblem]]:
    try:
        raw = _load_data(text)
    except yaml.YAMLError as error:
        return None, [DeclarationProblem(None, None, f"{source} is not valid YAML: {error}")]
    if not isinstance(raw, dict):
        return None, [DeclarationProblem(None, None, f"{source} must hold a mapping at the top")]
    # Items and departments are parsed one by one, so one bad entry does not hide the others' problems.
    items, problems = _parse_entries(raw, "items", ItemDeclaration)
    departments, department_problems = _parse_entries(raw, "departments", DepartmentDeclaration)
    problems += department_problems
    rest = {key: value for key, value in raw.items() if key not in ("items", "departments")}
    for key in ("items", "departments"):
        if not isinstance(raw.get(key, []), list):
            rest[key] = raw[key]  # let the model say what is wrong with it
    try:
        shell = CatalogFile.model_validate(rest)
    except ValidationError as error:
        return None, problems + [_locate(raw, detail) for detail in error.errors()]
    catalog = shell.model_copy(update={"items": items, "departments": departments})
    parsed_codes = {department.code for department in departments}
    catalog._unparsed_department_codes = {
        entry["code"]
        for entry in raw.get("departments") or []
        if isinstance(entry, dict) and isinstance(entry.get("code"), str) and entry["code"] not in parsed_codes
    }
    return catalog, problems


def _parse_entries(raw: dict[str, Any], key: str, model: type[Entry]) -> tuple[list[Entry], list[DeclarationProblem]]:
    entries = raw.get(key, [])
    parsed: list[Entry] = []
    problems: list[DeclarationProblem] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        try:
            parsed.append(model.model_validate(entry))
        except ValidationError as error:
            problems += [_locate(raw, detail, prefix=(key, index)) for detail in error.errors()]
    return parsed, problems


def _load_data(text: str) -> Any:
    """YAML, or JSON (a subset of YAML that json reads about fifty times faster)."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass  # YAML flow style also starts with "{"
    return yaml.load(text, Loader=_UniqueKeyLoader)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _locate(raw: dict[str, Any], detail: Any, prefix: tuple[str, int] | tuple[()] = ()) -> DeclarationProblem:
    """Name the item and field (or department) a pydantic error points at, by code and name."""
    loc = [*prefix, *detail["loc"]]
    message = detail["msg"].removeprefix("Value error, ")
    item = field = None
    context: list[str] = []  # which department / source system, when not an item
    if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
        entry = _entry(raw.get("items"), loc[1])
        item = str(entry.get("code") or f"#{loc[1] + 1}")
        rest = loc[2:]
        if len(rest) >= 2 and rest[0] == "fields" and isinstance(rest[1], int):
            field = str(_entry(entry.get("fields"), rest[1]).get("name") or f"#{rest[1] + 1}")
            rest = rest[2:]
    elif len(loc) >= 2 and loc[0] == "departments" and isinstance(loc[1], int):
        entry = _entry(raw.get("departments"), loc[1])
        context = [f"department {entry.get('code') or '#' + str(loc[1] + 1)}"]
        rest = loc[2:]
        if len(rest) >= 2 and rest[0] == "source_systems" and isinstance(rest[1], int):
            source = _entry(entry.get("source_systems"), rest[1])
            context.append(f"source system {source.get('code') or '#' + str(rest[1] + 1)}")
            rest = rest[2:]
    else:
        rest = loc
    where = ", ".join([*context, ".".join(str(part) for part in rest)] if rest else context)
    return DeclarationProblem(item, field, f"{where}: {message}" if where else message)


def _entry(entries: Any, index: int) -> dict[str, Any]:
    if isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict):
        return entries[index]
    return {}


def check_catalog_file(session: Session, catalog: CatalogFile, *, by_officer: bool = False) -> list[DeclarationProblem]:
    """Everything wrong with a file, judged against what the database already holds, without writing."""
    current_scheme = load_scheme(session)
    scheme = _merged_scheme(current_scheme, catalog.classification)
    problems = _check_scheme(current_scheme, scheme)
    if scheme.minimum_levels != current_scheme.minimum_levels:
        problems += _stored_fields_below_minimum(session, scheme, {item.code for item in catalog.items})
    department_codes = [department.code for department in catalog.departments]
    problems += [
        DeclarationProblem(None, None, f"department {code} is declared more than once")
        for code, count in Counter(department_codes).items()
        if count > 1
    ]
    sources = set(source_system_ids(session))
    for department in catalog.departments:
        codes = [source.code for source in department.source_systems]
        problems += [
            DeclarationProblem(None, None, f"department {department.code}: source system {code} is declared twice")
            for code, count in Counter(codes).items()
            if count > 1
        ]
        sources.update((department.code, code) for code in codes)
    known_departments = set(department_ids(session)) | set(department_codes) | catalog._unparsed_department_codes
    problems += check_items(catalog.items, scheme, known_departments, sources)
    stored_statuses = items_repository.statuses_by_code(session, [item.code for item in catalog.items])
    problems += check_status_changes(stored_statuses, catalog.items)
    problems += check_new_statuses(stored_statuses, catalog.items, by_officer)
    return problems


def import_catalog(session: Session, catalog: CatalogFile, actor: Actor, *, by_officer: bool = False) -> ImportReport:
    problems = check_catalog_file(session, catalog, by_officer=by_officer)
    if problems:
        raise InvalidDeclaration(problems)
    return _write(session, catalog, actor, by_officer)


def _write(session: Session, catalog: CatalogFile, actor: Actor, by_officer: bool) -> ImportReport:
    principal = as_principal(actor)
    scheme_changed = catalog.classification is not None and save_scheme(session, catalog.classification)
    departments_changed = sum(save_department(session, department) for department in catalog.departments)
    if departments_changed:  # a source system's access or format, as the pipeline manifest carries them
        rewrite_after_commit(session)
    items = write_checked_items(session, catalog.items, principal, by_officer=by_officer)
    if items.created + items.updated >= BULK_CHANGE:
        items_repository.refresh_statistics(session)
    report = ImportReport(scheme_changed, departments_changed, items)
    if report.changed or items.proposals:
        audit.record(session, principal.subject, principal.department, "catalog.import", "done",
                     by_officer=by_officer, scheme_changed=scheme_changed, departments_changed=departments_changed,
                     items_created=items.created, items_updated=items.updated,
                     proposals=len(items.proposals))  # fmt: skip
    return report


def export_catalog(session: Session) -> CatalogFile:
    stored = items_repository.load_items(session)
    return CatalogFile(
        classification=load_scheme(session),
        departments=[to_declaration(department) for department in list_departments(session)],
        items=[item.declaration for item in sorted(stored.values(), key=lambda item: item.id)],
    )


def dump_catalog(catalog: CatalogFile) -> str:
    data = catalog.model_dump(mode="json", exclude_defaults=True)
    data["version"] = catalog.version
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False, width=120)


def catalog_json_schema() -> str:
    return json.dumps(CatalogFile.model_json_schema(), ensure_ascii=False, indent=2) + "\n"


def _merged_scheme(current: ClassificationScheme, declared: ClassificationScheme | None) -> ClassificationScheme:
    if declared is None:
        return current
    levels = {level.level: level for level in current.levels} | {level.level: level for level in declared.levels}
    return ClassificationScheme(
        levels=[levels[number] for number in sorted(levels)],
        minimum_levels={**current.minimum_levels, **declared.minimum_levels},
    )


def _check_scheme(current: ClassificationScheme, scheme: ClassificationScheme) -> list[DeclarationProblem]:
    known = scheme.level_numbers()
    problems = [
        DeclarationProblem(None, None, f"classification: minimum level {level} for {semantic.value} is not a level")
        for semantic, level in scheme.minimum_levels.items()
        if level not in known
    ]
    owners = {level.code: level.level for level in current.levels}
    problems += [
        DeclarationProblem(
            None,
            None,
            f"classification: level code {level.code} belongs to level {owners[level.code]}; "
            "codes cannot move between levels",
        )
        for level in scheme.levels
        if owners.get(level.code, level.level) != level.level
    ]
    codes = Counter(level.code for level in scheme.levels)
    problems += [
        DeclarationProblem(None, None, f"classification: level code {code} is used twice")
        for code, count in codes.items()
        if count > 1
    ]
    return problems


def _stored_fields_below_minimum(
    session: Session, scheme: ClassificationScheme, declared_codes: set[str]
) -> list[DeclarationProblem]:
    """Stored items the file does not redeclare must still meet raised minimum levels."""
    return [
        DeclarationProblem(
            code,
            name,
            f"level {level} would be below the new minimum {scheme.minimum_for(SemanticType(semantic))} "
            f"for semantic type {semantic}: raise the field's level in the same file",
        )
        for code, name, semantic, level in items_repository.fields_below(session, scheme.minimum_levels)
        if code not in declared_codes
    ]
