"""Who a notification is for: an audience is a set of Casbin roles, in the notification's department or
everywhere. The same mapping decides who is mailed and who sees the notice in the platform."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access.models import CasbinRule, UserAccount
from catalog.access.policy import EVERYWHERE, roles_of
from catalog.notifications.models import NotificationChannel

DEPARTMENT, STEWARDS, DATA_OFFICERS, OPS = "department", "stewards", "data_officers", "ops"
AUDIENCE_ROLES: dict[str, tuple[str, ...]] = {
    DEPARTMENT: ("steward", "user"),  # a department's people, as notifications always were
    STEWARDS: ("steward",),
    DATA_OFFICERS: ("data_officer",),
    OPS: ("ops",),
}
DEPARTMENT_AUDIENCES = frozenset({DEPARTMENT, STEWARDS})  # held in the department; the others everywhere (*)
USER = "user:"


@dataclass(frozen=True)
class Audience:
    """An audience and its department's code (None: any department, for the platform-wide audiences)."""

    name: str
    department: str | None


def recipients(session: Session, audience: str, department: str | None) -> list[str]:
    """Usernames of the active people of the audience who have an e-mail address."""
    scope = department if audience in DEPARTMENT_AUDIENCES else EVERYWHERE
    if scope is None:
        return []
    subjects = session.scalars(
        select(CasbinRule.v0).where(
            CasbinRule.ptype == "g", CasbinRule.v1.in_(AUDIENCE_ROLES[audience]), CasbinRule.v2 == scope
        )
    )
    names = {str(subject).removeprefix(USER) for subject in subjects if str(subject).startswith(USER)}
    if not names:
        return []
    return list(
        session.scalars(
            select(UserAccount.username)
            .where(UserAccount.username.in_(names), UserAccount.active.is_(True), UserAccount.email.is_not(None))
            .order_by(UserAccount.username)
        )
    )


def channels(session: Session, audience: str, department_id: int | None) -> list[int]:
    """The enabled channels of the department a notice for its people or stewards goes out on."""
    if audience not in DEPARTMENT_AUDIENCES or department_id is None:
        return []
    return list(
        session.scalars(
            select(NotificationChannel.id)
            .where(NotificationChannel.department_id == department_id, NotificationChannel.enabled.is_(True))
            .order_by(NotificationChannel.id)
        )
    )


def visible_to(session: Session, subject: str) -> list[Audience]:
    """The audiences a principal belongs to, from its role bindings."""
    return audiences_of(roles_of(session, subject))


def audiences_of(roles: Sequence[tuple[str, str]]) -> list[Audience]:
    found = []
    for role, scope in roles:
        for audience, members in AUDIENCE_ROLES.items():
            in_department = audience in DEPARTMENT_AUDIENCES
            if role in members and (scope != EVERYWHERE) == in_department:
                found.append(Audience(audience, scope if in_department else None))
    return sorted(set(found), key=lambda held: (held.name, held.department or ""))
