from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from catalog.departments.models import Department, SourceSystem
from catalog.departments.schemas import DepartmentDeclaration

SOURCE_ATTRIBUTES = ("name", "access", "location", "file_pattern", "query", "format", "encoding")
DEPARTMENT_ATTRIBUTES = ("name_zh", "name_en", "kind", "active")


def list_departments(session: Session) -> list[Department]:
    statement = select(Department).options(selectinload(Department.source_systems)).order_by(Department.id)
    return list(session.scalars(statement))


def to_declaration(department: Department) -> DepartmentDeclaration:
    return DepartmentDeclaration.model_validate(
        {
            "code": department.code,
            **{name: getattr(department, name) for name in DEPARTMENT_ATTRIBUTES},
            "source_systems": [
                {"code": source.code, **{name: getattr(source, name) for name in SOURCE_ATTRIBUTES}}
                for source in department.source_systems
            ],
        }
    )


def save_department(session: Session, declared: DepartmentDeclaration) -> bool:
    """Create or update one department and the source systems it names; returns whether anything changed.

    Source systems the declaration does not name are kept.
    """
    department = session.scalar(
        select(Department).options(selectinload(Department.source_systems)).where(Department.code == declared.code)
    )
    created = department is None
    if department is None:
        department = Department(code=declared.code, source_systems=[])
        session.add(department)
    changed = _assign(department, declared.model_dump(mode="json", include=set(DEPARTMENT_ATTRIBUTES)))
    existing = {source.code: source for source in department.source_systems}
    for source_declared in declared.source_systems:
        source = existing.get(source_declared.code)
        if source is None:
            source = SourceSystem(code=source_declared.code)
            department.source_systems.append(source)
        values = source_declared.model_dump(mode="json", include=set(SOURCE_ATTRIBUTES))
        changed = _assign(source, values) or changed
    session.flush()
    return created or changed


def _assign(row: object, values: dict[str, object]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def department_ids(session: Session) -> dict[str, int]:
    return {code: id_ for code, id_ in session.execute(select(Department.code, Department.id))}


def source_system_ids(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(Department.code, SourceSystem.code, SourceSystem.id).join(SourceSystem.department))
    return {(department, source): id_ for department, source, id_ in rows}
