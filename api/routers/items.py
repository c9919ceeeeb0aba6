"""The catalog: search and read (every signed-in principal; open data also anonymously), and registration,
declaration changes and lifecycle transitions by stewards of the owning department."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from api.deps import GuardDep, SessionDep
from api.problems import forbidden
from catalog.items import service as items
from catalog.items.errors import ItemNotFound
from catalog.items.schemas import ItemDeclaration, ItemRead, ItemStatus, ItemUpdateRead, SearchPage, SearchQuery

router = APIRouter(prefix="/items", tags=["catalog"])
EVERYWHERE = "*"


class Transition(BaseModel):
    to: ItemStatus


@router.get("", response_model=SearchPage)
def search(query: Annotated[SearchQuery, Query()], session: SessionDep, guard: GuardDep) -> SearchPage:
    """Anonymous callers see published open data; signed-in callers see published items of every department
    and every item of their own (officers and admins: every item)."""
    return items.search(session, visible_query(query, guard))


@router.get("/{code}", response_model=ItemRead)
def read(code: str, session: SessionDep, guard: GuardDep) -> ItemRead:
    item = items.get_item(session, code)
    if not may_see(item, guard):
        raise ItemNotFound(code)  # 404, not 403: the item's existence is not the caller's to know
    return item


@router.post("", response_model=ItemRead, status_code=status.HTTP_201_CREATED)
def register(declaration: ItemDeclaration, session: SessionDep, guard: GuardDep) -> ItemRead:
    """A new item, registered as a draft (any other status is refused): it is published through a transition
    once a data officer has approved every field."""
    guard.require(declaration.department, "item", "register", item_code=declaration.code)
    return items.register_item(session, declaration, guard.principal)


@router.put("/{code}", response_model=ItemUpdateRead)
def update(code: str, declaration: ItemDeclaration, session: SessionDep, guard: GuardDep) -> ItemUpdateRead:
    """A new declaration of the item. Once a data officer has approved a field, a change of its level, semantic
    type or masking rule goes to the officers' review queue: one that only raises protection applies at once, any
    other waits and the field is served as approved meanwhile (listed in ``awaiting_review``)."""
    current = read(code, session, guard)
    guard.require(current.department, "item", "update", item_code=code)
    if declaration.code != code or declaration.department != current.department:
        raise forbidden("an item keeps its code and its department")
    return items.update_item(session, declaration, guard.principal)


@router.post("/{code}/transitions", response_model=ItemRead)
def transition(code: str, body: Transition, session: SessionDep, guard: GuardDep) -> ItemRead:
    current = read(code, session, guard)
    guard.require(current.department, "item", "transition", item_code=code)
    return items.transition(session, code, body.to, guard.principal)


def _sees_everything(guard: GuardDep) -> bool:
    return guard.allows(EVERYWHERE, "audit", "read")  # data officers and platform admins


def visible_query(query: SearchQuery, guard: GuardDep) -> SearchQuery:
    if guard.principal.anonymous:
        return query.model_copy(update={"open_data": True, "status": ItemStatus.PUBLISHED})
    own = guard.principal.department
    if _sees_everything(guard) or (query.department is not None and query.department == own):
        return query
    return query.model_copy(update={"status": ItemStatus.PUBLISHED})


def may_see(item: ItemRead, guard: GuardDep) -> bool:
    published = item.status is ItemStatus.PUBLISHED
    if guard.principal.anonymous:
        return published and item.open_data
    return published or item.department == guard.principal.department or _sees_everything(guard)
