"""Reads and bulk writes of catalog items. Core statements keep 10k-item imports fast."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, delete, func, insert, select, text, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from catalog.access.changes import ITEM, note_change
from catalog.db import utcnow
from catalog.departments.models import Department, SourceSystem
from catalog.items.errors import ItemNotFound
from catalog.items.models import CatalogItem, ItemChange, ItemField, ItemTag
from catalog.items.schemas import (
    FieldDeclaration,
    ItemChangeRead,
    ItemDeclaration,
    ItemRead,
    ItemStatus,
    ItemSummary,
    SearchPage,
    SearchQuery,
)

CHUNK = 500
ITEM_ATTRIBUTES = ("title", "description", "update_frequency", "sharing_type", "open_data", "quality", "load",
                   "status")  # fmt: skip
FIELD_ATTRIBUTES = (
    "name",
    "label",
    "description",
    "data_type",
    "nullable",
    "semantic_type",
    "allowed_values",
    "pattern",
    "minimum",
    "maximum",
    "level",
    "masking",
)


@dataclass(frozen=True)
class StoredItem:
    id: int
    declaration: ItemDeclaration
    status: ItemStatus
    level: int
    created_at: datetime
    updated_at: datetime
    field_ids: dict[str, int]


@dataclass(frozen=True)
class References:
    """Codes resolved to row ids, loaded once per unit of work."""

    departments: dict[str, int]
    sources: dict[tuple[str, str], int]

    def source_id(self, declared: ItemDeclaration) -> int | None:
        if declared.source_system is None:
            return None
        return self.sources[(declared.department, declared.source_system)]


def bulk_insert(entity: type[Any]) -> Any:
    """An ORM bulk INSERT that sends NULLs explicitly, so rows with different NULL columns still batch
    into one executemany (without it, each change of NULL pattern starts a new statement)."""
    return insert(entity).execution_options(render_nulls=True)


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_items(session: Session, codes: Iterable[str] | None = None) -> dict[str, StoredItem]:
    """Stored items by code (all of them when codes is None), as declarations."""
    if codes is None:
        return _load_where(session, None)
    stored: dict[str, StoredItem] = {}
    for chunk in _chunks(sorted(set(codes))):
        stored.update(_load_where(session, CatalogItem.code.in_(chunk)))
    return stored


def _load_where(session: Session, condition: ColumnElement[bool] | None) -> dict[str, StoredItem]:
    statement = (
        select(CatalogItem, Department.code.label("department_code"), SourceSystem.code.label("source_code"))
        .join(Department, CatalogItem.department_id == Department.id)
        .outerjoin(SourceSystem, CatalogItem.source_system_id == SourceSystem.id)
        .order_by(CatalogItem.code)
    )
    if condition is not None:
        statement = statement.where(condition)
    rows = session.execute(statement).all()
    if not rows:
        return {}
    ids = [row.CatalogItem.id for row in rows]
    fields_by_item = _fields_of(session, ids)
    tags_by_item = _tags_of(session, ids)
    stored = {}
    for item, department_code, source_code in rows:
        fields = fields_by_item.get(item.id, [])
        declaration = ItemDeclaration.model_validate(
            {
                "code": item.code,
                **{name: getattr(item, name) for name in ITEM_ATTRIBUTES},
                "department": department_code,
                "source_system": source_code,
                "tags": tags_by_item.get(item.id, []),
                "fields": [field for _, field in fields],
            }
        )
        stored[item.code] = StoredItem(
            id=item.id,
            declaration=declaration,
            status=ItemStatus(item.status),
            level=item.level,
            created_at=item.created_at,
            updated_at=item.updated_at,
            field_ids={
                declared.name: field_id for (field_id, _), declared in zip(fields, declaration.fields, strict=True)
            },
        )
    return stored


def _fields_of(session: Session, item_ids: Sequence[int]) -> dict[int, list[tuple[int, dict[str, Any]]]]:
    columns = [getattr(ItemField, name) for name in FIELD_ATTRIBUTES]
    by_item: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for chunk in _chunks(item_ids):
        statement = (
            select(ItemField.item_id, ItemField.id, ItemField.is_key.label("key"), *columns)
            .where(ItemField.item_id.in_(chunk))
            .order_by(ItemField.item_id, ItemField.position)
        )
        for row in session.execute(statement).mappings():
            values = dict(row)
            by_item[values.pop("item_id")].append((values.pop("id"), values))
    return by_item


def _tags_of(session: Session, item_ids: Sequence[int]) -> dict[int, list[str]]:
    by_item: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(item_ids):
        for item_id, tag in session.execute(select(ItemTag.item_id, ItemTag.tag).where(ItemTag.item_id.in_(chunk))):
            by_item[item_id].append(tag)
    return by_item


def search_text(declared: ItemDeclaration) -> str:
    parts = [declared.code, declared.title, declared.description, *declared.tags]
    for field in declared.fields:
        parts.extend((field.name, field.label))
    return "\n".join(part for part in parts if part).lower()


def _item_row(declared: ItemDeclaration, refs: References) -> dict[str, Any]:
    return {
        **declared.model_dump(mode="json", include=set(ITEM_ATTRIBUTES)),
        "department_id": refs.departments[declared.department],
        "source_system_id": refs.source_id(declared),
        "level": declared.highest_level,
        "search_text": search_text(declared),
    }


def _field_row(item_id: int, position: int, field: FieldDeclaration) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "position": position,
        "is_key": field.key,
        **field.model_dump(mode="json", include=set(FIELD_ATTRIBUTES)),
    }


def insert_items(session: Session, items: Sequence[ItemDeclaration], refs: References, actor: str) -> None:
    now = utcnow()
    for chunk in _chunks(items):
        rows = [{**_item_row(d, refs), "code": d.code, "created_at": now, "updated_at": now} for d in chunk]
        ids = session.scalars(
            bulk_insert(CatalogItem).returning(CatalogItem.id, sort_by_parameter_order=True), rows
        ).all()
        field_rows = [
            _field_row(item_id, position, field)
            for item_id, declared in zip(ids, chunk, strict=True)
            for position, field in enumerate(declared.fields)
        ]
        session.execute(bulk_insert(ItemField), field_rows)
        tag_rows = [{"item_id": i, "tag": tag} for i, declared in zip(ids, chunk, strict=True) for tag in declared.tags]
        if tag_rows:
            session.execute(bulk_insert(ItemTag), tag_rows)
        changes = [
            {
                "item_id": i,
                "changed_at": now,
                "actor": actor,
                "action": "created",
                "changes": declared.model_dump(mode="json", exclude_defaults=True),
            }
            for i, declared in zip(ids, chunk, strict=True)
        ]
        session.execute(bulk_insert(ItemChange), changes)


def update_items(
    session: Session,
    changed: Sequence[tuple[StoredItem, ItemDeclaration]],
    refs: References,
    actor: str,
) -> None:
    now = utcnow()
    for stored, _ in changed:
        note_change(session, ITEM, stored.id)
    for chunk in _chunks(changed):
        session.execute(
            update(CatalogItem),
            [{"id": stored.id, **_item_row(new, refs), "updated_at": now} for stored, new in chunk],
        )
        _replace_tags(session, [(stored, new) for stored, new in chunk if stored.declaration.tags != new.tags])
        _update_fields(session, chunk)
        session.execute(
            insert(ItemChange),
            [
                {
                    "item_id": stored.id,
                    "changed_at": now,
                    "actor": actor,
                    "action": "updated",
                    "changes": declaration_diff(stored.declaration, new),
                }
                for stored, new in chunk
            ],
        )


def _replace_tags(session: Session, changed: Sequence[tuple[StoredItem, ItemDeclaration]]) -> None:
    if not changed:
        return
    session.execute(delete(ItemTag).where(ItemTag.item_id.in_([stored.id for stored, _ in changed])))
    rows = [{"item_id": stored.id, "tag": tag} for stored, new in changed for tag in new.tags]
    if rows:
        session.execute(bulk_insert(ItemTag), rows)


def _update_fields(session: Session, changed: Sequence[tuple[StoredItem, ItemDeclaration]]) -> None:
    """Fields keep their row (and id) while their name stays; removed ones go, new ones are added."""
    removed: list[int] = []
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for stored, new in changed:
        if stored.declaration.fields == new.fields:
            continue
        declared_names = {field.name for field in new.fields}
        old_fields = {field.name: field for field in stored.declaration.fields}
        removed.extend(i for name, i in stored.field_ids.items() if name not in declared_names)
        for position, field in enumerate(new.fields):
            field_id = stored.field_ids.get(field.name)
            row = _field_row(stored.id, position, field)
            if field_id is None:
                inserts.append(row)
                continue
            before = old_fields.get(field.name)
            if before is not None and _classification(before) != _classification(field):
                row["review_status"] = "pending"  # the steward's new values await an officer's review
            updates.append({"id": field_id, **row})
    if removed:
        session.execute(delete(ItemField).where(ItemField.id.in_(removed)))
    if updates:
        session.execute(update(ItemField), updates)
    if inserts:
        session.execute(bulk_insert(ItemField), inserts)


def _classification(field: FieldDeclaration) -> tuple[int, str, str | None]:
    return field.level, field.semantic_type.value, field.masking


def declaration_diff(old: ItemDeclaration, new: ItemDeclaration) -> dict[str, Any]:
    """What changed, as {attribute: [old, new]} plus per-field changes under "fields"."""
    before = old.model_dump(mode="json", exclude={"fields"})
    after = new.model_dump(mode="json", exclude={"fields"})
    changes: dict[str, Any] = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    old_fields = {field.name: field.model_dump(mode="json") for field in old.fields}
    new_fields = {field.name: field.model_dump(mode="json") for field in new.fields}
    field_changes: dict[str, Any] = {}
    for name, values in new_fields.items():
        if name not in old_fields:
            field_changes[name] = {"added": values}
        elif values != old_fields[name]:
            field_changes[name] = {
                attribute: [old_fields[name][attribute], value]
                for attribute, value in values.items()
                if old_fields[name][attribute] != value
            }
    field_changes.update({name: {"removed": values} for name, values in old_fields.items() if name not in new_fields})
    if field_changes:
        changes["fields"] = field_changes
    if [f.name for f in old.fields] != [f.name for f in new.fields] and set(old_fields) == set(new_fields):
        changes["field_order"] = [list(old_fields), list(new_fields)]
    return changes


def set_status(session: Session, stored: StoredItem, target: str, actor: str) -> bool:
    """Move the status on from the one read; False if another transaction moved it first."""
    now = utcnow()
    current = stored.status
    result = session.execute(
        update(CatalogItem)
        .where(CatalogItem.id == stored.id, CatalogItem.status == current.value)
        .values(status=target, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    note_change(session, ITEM, stored.id)
    session.add(
        ItemChange(
            item_id=stored.id,
            changed_at=now,
            actor=actor,
            action="status",
            changes={"status": [current.value, target]},
        )
    )
    session.flush()
    return True


def fields_below(session: Session, minimum_levels: dict[Any, int]) -> list[tuple[str, str, str, int]]:
    """(item code, field name, semantic type, level) of stored fields below their type's minimum."""
    found: list[tuple[str, str, str, int]] = []
    for semantic_type, minimum in minimum_levels.items():
        statement = (
            select(CatalogItem.code, ItemField.name, ItemField.semantic_type, ItemField.level)
            .join(ItemField, ItemField.item_id == CatalogItem.id)
            .where(ItemField.semantic_type == str(semantic_type), ItemField.level < minimum)
        )
        found.extend((code, name, semantic, level) for code, name, semantic, level in session.execute(statement))
    return found


def statuses_by_code(session: Session, codes: Sequence[str]) -> dict[str, ItemStatus]:
    statuses: dict[str, ItemStatus] = {}
    for chunk in _chunks(sorted(set(codes))):
        rows = session.execute(select(CatalogItem.code, CatalogItem.status).where(CatalogItem.code.in_(chunk)))
        statuses.update({code: ItemStatus(status) for code, status in rows})
    return statuses


def refresh_statistics(session: Session) -> None:
    """After a bulk change, let PostgreSQL's planner see the new row counts at once (without them it
    picks nested loops over thousands of items until autovacuum catches up, and costs the freshness query over the
    item changes so high that it is JIT-compiled on every request: 0.5-1.2 s each)."""
    if session.get_bind().dialect.name == "postgresql":
        for model in (CatalogItem, ItemField, ItemTag, ItemChange, Department):
            session.execute(text(f"ANALYZE {model.__tablename__}"))


def get_by_code_or_raise(session: Session, code: str) -> StoredItem:
    stored = load_items(session, [code]).get(code)
    if stored is None:
        raise ItemNotFound(code)
    return stored


def to_read(stored: StoredItem) -> ItemRead:
    return ItemRead(
        **stored.declaration.model_dump(),
        level=stored.level,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


def history(session: Session, item_id: int) -> list[ItemChangeRead]:
    statement = select(ItemChange).where(ItemChange.item_id == item_id).order_by(ItemChange.id)
    return [
        ItemChangeRead(changed_at=c.changed_at, actor=c.actor, action=c.action, changes=c.changes)
        for c in session.scalars(statement)
    ]


class contains_text(FunctionElement[bool]):
    """``haystack`` contains ``needle`` literally: instr() on SQLite, strpos() on PostgreSQL.

    Both scan faster than LIKE '%…%' (no wildcard or case handling) and need no escaping.
    """

    inherit_cache = True
    type = Boolean()


@compiles(contains_text)
def _contains_text_default(element: contains_text, compiler: Any, **kw: Any) -> str:
    return f"(instr({compiler.process(element.clauses, **kw)}) > 0)"


@compiles(contains_text, "postgresql")
def _contains_text_postgresql(element: contains_text, compiler: Any, **kw: Any) -> str:
    return f"(strpos({compiler.process(element.clauses, **kw)}) > 0)"


def _search_conditions(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        contains_text(CatalogItem.search_text, term.lower()) for term in (query.text or "").split()
    ]
    if query.department is not None:
        conditions.append(Department.code == query.department)
    if query.level is not None:
        conditions.append(CatalogItem.level == query.level)
    if query.max_level is not None:
        conditions.append(CatalogItem.level <= query.max_level)
    if query.sharing_type is not None:
        conditions.append(CatalogItem.sharing_type == query.sharing_type.value)
    if query.open_data is not None:
        conditions.append(CatalogItem.open_data == query.open_data)
    if query.status is not None:
        conditions.append(CatalogItem.status == query.status.value)
    if query.tag is not None:
        tagged = select(ItemTag.item_id).where(ItemTag.tag == query.tag)
        conditions.append(CatalogItem.id.in_(tagged))
    return conditions


def search(session: Session, query: SearchQuery) -> SearchPage:
    where = and_(True, *_search_conditions(query))
    column = getattr(CatalogItem, query.sort.lstrip("-"))
    if session.get_bind().dialect.name == "postgresql" and query.sort.lstrip("-") in ("code", "title"):
        column = column.collate("C")  # code-point order, as on SQLite, whatever the server's locale
    order = column.desc() if query.sort.startswith("-") else column.asc()
    statement = (
        select(
            CatalogItem.id,
            CatalogItem.code,
            CatalogItem.title,
            Department.code.label("department"),
            CatalogItem.level,
            CatalogItem.sharing_type,
            CatalogItem.open_data,
            CatalogItem.status,
            CatalogItem.update_frequency,
            CatalogItem.updated_at,
            func.count().over().label("total"),
        )
        .join(Department, CatalogItem.department_id == Department.id)
        .where(where)
        .order_by(order, CatalogItem.id)
        .limit(query.page_size)
        .offset((query.page - 1) * query.page_size)
    )
    rows = session.execute(statement).mappings().all()
    if rows:
        total = rows[0]["total"]
    elif query.page == 1:
        total = 0
    else:  # a page past the end: count separately
        count = select(func.count()).select_from(CatalogItem).join(Department).where(where)
        total = session.scalar(count) or 0
    tags = _tags_of(session, [row["id"] for row in rows])
    items = [ItemSummary.model_validate({**row, "tags": sorted(tags.get(row["id"], []))}) for row in rows]
    return SearchPage(total=total, page=query.page, page_size=query.page_size, items=items)
