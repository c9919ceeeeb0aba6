"""Policy drift: Casbin rules and role bindings that no current user, token or department explains, active
subscriptions that outlived their item, fields or consumer, and grants above what the fields' approved levels and
the recorded decisions allow.

``find_drift`` only reads; ``check`` is what the edges call (``datashare policy check``, ``GET /policy/check``): the
same findings, audited as ``policy.check`` in the caller's transaction. Every kind is defined once, in
``FindingKind``'s comments; ``policies/README.md`` lists them for people.

What a binding should be comes from how principals get theirs (``catalog.access.service``): a user holds the roles
given when the account was made, department roles (steward, user) in the user's own department and global roles
(platform_admin, data_officer, ops) everywhere (``*``); a machine token holds ``system`` in its department. A
deactivated user or a revoked token has no binding left (``policy.revoke_roles``).

What is served is the field's stored level (``item_field.level``, the last level a data officer approved, or a
raise that applied at once); a subscription serves a field unmasked when the level is at or below its
``approved_level`` and the field is not in its ``masked_fields``. Its decisions are recorded in its columns
(``provider_decided_by``: a steward, or ``automatic``; ``officer_decided_by``); a re-approval records only its
level, in the audit trail (``subscription.reapprove``), and only a provider or an officer can re-approve above the
automatic maximum, only an officer at or above the officer level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.models import CasbinRule, MachineToken, UserAccount
from catalog.access.service import Principal, acting_user
from catalog.audit import service as audit
from catalog.audit.models import AuditEvent
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.errors import Forbidden, NotFound
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import ItemStatus, SharingType
from catalog.settings import Settings
from catalog.subscriptions.models import Subscription

PERMISSION = ("policy", "read")  # (object, action) the Casbin policy must allow, everywhere ("*"), to check
AUDIT_ACTION = "policy.check"
AUTOMATIC = "automatic"  # provider_decided_by of a subscription approved without a provider (unconditional items)
REAPPROVE = ("subscription.reapprove", "subscription.renew")  # the audit actions of a re-approval, with its level
USER, TOKEN = "user:", "token:"
MACHINE_ROLE = "system"  # the role of machine tokens, and of nothing else


class Category(StrEnum):
    POLICY = "policy"  # (a) Casbin rules and role bindings
    SUBSCRIPTION = "subscription"  # (b) active subscriptions whose item, fields or consumer are gone
    GRANT = "grant"  # (c) active subscriptions granting more than levels and decisions allow


class FindingKind(StrEnum):
    # (a) rules: rows of casbin_rule
    RULE_MALFORMED = "rule_malformed"  # ptype neither p nor g, or not exactly three non-empty values
    RULE_UNKNOWN_ROLE = "rule_unknown_role"  # a p rule for a role that is not one of policy.ROLES
    RULE_UNKNOWN_OBJECT = "rule_unknown_object"  # a p rule for an object no rule of the seed file names
    RULE_NOT_IN_SEED = "rule_not_in_seed"  # any other p rule that policies/policy.csv does not hold
    RULE_MISSING = "rule_missing"  # a rule of policies/policy.csv that casbin_rule does not hold
    # (a) bindings: g rules (subject, role, department or *)
    BINDING_UNKNOWN_SUBJECT = "binding_unknown_subject"  # no such user or token (or not user:/token: at all)
    BINDING_INACTIVE_USER = "binding_inactive_user"  # the user account is deactivated
    BINDING_REVOKED_TOKEN = "binding_revoked_token"  # the machine token is revoked
    BINDING_EXPIRED_TOKEN = "binding_expired_token"  # the machine token's expiry has passed
    BINDING_UNKNOWN_DEPARTMENT = "binding_unknown_department"  # the domain is neither * nor a department's code
    # the role is unknown, or one the subject's kind never holds: tokens hold system only, users never system
    BINDING_WRONG_ROLE = "binding_wrong_role"
    # the subject exists, the role and department are known, but the role is held elsewhere than it is given:
    # global roles at *, department roles in the user's or token's own department
    BINDING_WRONG_DEPARTMENT = "binding_wrong_department"
    # (b) active subscriptions (status active, period not over)
    SUBSCRIPTION_ITEM_MISSING = "subscription_item_missing"  # its item row no longer exists
    SUBSCRIPTION_ITEM_NOT_PUBLISHED = "subscription_item_not_published"  # its item is retired, draft or in review
    SUBSCRIPTION_ITEM_NOT_SHARED = "subscription_item_not_shared"  # its item is now not shared (不予共享)
    SUBSCRIPTION_FIELDS_MISSING = "subscription_fields_missing"  # fields it names that the item no longer has
    SUBSCRIPTION_CONSUMER_MISSING = "subscription_consumer_missing"  # its consumer department row no longer exists
    # (c) grants of active subscriptions
    GRANT_WITHOUT_LEVEL = "grant_without_level"  # active with no approved_level at all
    GRANT_FIELD_UNREVIEWED = "grant_field_unreviewed"  # covers a field no data officer ever approved (reviewed_at)
    # a field whose level is above approved_level is not in masked_fields: the raise never reached the grant (no
    # notification, nothing keeps it masked if the level falls again before a re-approval)
    GRANT_UNMASKED_ABOVE_LEVEL = "grant_unmasked_above_level"
    GRANT_ABOVE_FIELDS = "grant_above_fields"  # approved_level above the highest level of the fields it covers
    # approved_level at or above settings.officer_level with no officer decision: officer_decided_by is empty and
    # no re-approval at or above approved_level is in the audit trail
    GRANT_WITHOUT_OFFICER = "grant_without_officer"
    # approved_level above settings.auto_approve_max_level with no provider decision: provider_decided_by is empty
    # or automatic and no re-approval at or above approved_level is in the audit trail
    GRANT_WITHOUT_PROVIDER = "grant_without_provider"

    @property
    def category(self) -> Category:
        if self.value.startswith(("rule_", "binding_")):
            return Category.POLICY
        return Category.SUBSCRIPTION if self.value.startswith("subscription_") else Category.GRANT


class Finding(BaseModel):
    """One piece of drift and what it names."""

    kind: FindingKind
    category: Category
    message: str
    rule: list[str] | None = Field(default=None, description="The Casbin rule: ptype and its values.")
    rule_id: int | None = Field(default=None, description="The rule's row in casbin_rule (none: a missing rule).")
    subject: str | None = None
    role: str | None = None
    department: str | None = Field(default=None, description="A binding's department (domain), or *.")
    subscription_id: int | None = None
    item: str | None = None
    consumer: str | None = None
    fields: list[str] = Field(default_factory=list)
    levels: dict[str, int] = Field(default_factory=dict, description="The named fields' served levels.")
    approved_level: int | None = None


class DriftReport(BaseModel):
    checked_at: datetime
    rules_checked: int = Field(description="Rows of casbin_rule read (p and g).")
    subscriptions_checked: int = Field(description="Active subscriptions read.")
    total: int = Field(description="How many findings.")
    by_kind: dict[str, int] = Field(description="Findings per kind.")
    findings: list[Finding]


@dataclass(frozen=True)
class DriftRules:
    """What the check compares with: the seed permissions (the file the platform loads) and the approval levels."""

    seed: frozenset[tuple[str, str, str]]
    auto_approve_max_level: int
    officer_level: int

    @classmethod
    def of(cls, settings: Settings, seed_file: Path = policy.SEED_FILE) -> DriftRules:
        seed = frozenset(policy.seed_permissions(seed_file))
        return cls(seed, settings.auto_approve_max_level, settings.officer_level)

    @property
    def objects(self) -> frozenset[str]:
        return frozenset(obj for _, obj, _ in self.seed)


class CheckerNotFound(NotFound):
    code = "policy_checker_not_found"


class CheckForbidden(Forbidden):
    code = "policy_check_forbidden"


def _finding(kind: FindingKind, message: str, **values: Any) -> Finding:
    return Finding(kind=kind, category=kind.category, message=message, **values)


# --- the check -----------------------------------------------------------------------------------------------


def check(session: Session, rules: DriftRules, actor: Principal, now: datetime | None = None) -> DriftReport:
    """The drift, with its audit row (``policy.check``: how many findings, per kind) in the caller's transaction.
    Who may ask is the edge's business (the Casbin guard, or ``checker`` for the command line)."""
    report = find_drift(session, rules, now)
    audit.record(session, actor.subject, actor.department, AUDIT_ACTION, "done", findings=report.total,
                 by_kind=report.by_kind)  # fmt: skip
    return report


def find_drift(session: Session, rules: DriftRules, now: datetime | None = None) -> DriftReport:
    """Every finding, policy first, then subscriptions in id order; reads only."""
    now = now or utcnow()
    stored = list(session.scalars(select(CasbinRule).order_by(CasbinRule.id)))
    findings = list(_rule_drift(stored, rules))
    findings += _binding_drift(session, [rule for rule in stored if rule.ptype == "g" and _well_formed(rule)], now)
    active = _active_subscriptions(session, now)
    findings += _subscription_drift(session, active, rules)
    by_kind = Counter(finding.kind.value for finding in findings)
    return DriftReport(checked_at=now, rules_checked=len(stored), subscriptions_checked=len(active),
                       total=len(findings), by_kind=dict(sorted(by_kind.items())), findings=findings)  # fmt: skip


def checker(session: Session, username: str) -> Principal:
    """The principal of an active user whom the Casbin policy lets check the policy (``PERMISSION`` everywhere)."""
    try:
        return acting_user(session, username, policy.EVERYWHERE, *PERMISSION)
    except NotFound:
        raise CheckerNotFound(f"there is no active user {username}") from None
    except Forbidden:
        raise CheckForbidden(
            f"{username} may not check the access policy (data officers and platform admins may)"
        ) from None


# --- (a) rules -----------------------------------------------------------------------------------------------


def _values(rule: CasbinRule) -> list[str]:
    return [value for value in (rule.v0, rule.v1, rule.v2, rule.v3, rule.v4, rule.v5) if value]


def _well_formed(rule: CasbinRule) -> bool:
    """p and g rules have exactly three values, none empty (model.conf: p = sub, obj, act; g = _, _, _)."""
    given = (rule.v0, rule.v1, rule.v2)
    return rule.ptype in ("p", "g") and all(given) and not any((rule.v3, rule.v4, rule.v5))


def _rule_drift(stored: list[CasbinRule], rules: DriftRules) -> Iterator[Finding]:
    present: set[tuple[str, str, str]] = set()
    for rule in stored:
        shown = [rule.ptype, *_values(rule)]
        if not _well_formed(rule):
            yield _finding(FindingKind.RULE_MALFORMED, f"{', '.join(shown)}: not a rule of the model "
                           "(p or g with three values)", rule=shown, rule_id=rule.id)  # fmt: skip
        elif rule.ptype == "p":
            permission = (str(rule.v0), str(rule.v1), str(rule.v2))
            present.add(permission)
            problem = _permission_problem(permission, rules)
            if problem is not None:
                kind, why = problem
                yield _finding(kind, f"{', '.join(shown)}: {why}", rule=shown, rule_id=rule.id, role=permission[0])
    for role, obj, action in sorted(rules.seed - present):
        shown = ["p", role, obj, action]
        yield _finding(FindingKind.RULE_MISSING, f"{', '.join(shown)}: in policies/policy.csv but not in the "
                       "database (run datashare db upgrade)", rule=shown, role=role)  # fmt: skip


def _permission_problem(permission: tuple[str, str, str], rules: DriftRules) -> tuple[FindingKind, str] | None:
    role, obj, _ = permission
    if role not in policy.ROLES:
        return FindingKind.RULE_UNKNOWN_ROLE, f"unknown role {role} (roles: {', '.join(sorted(policy.ROLES))})"
    if permission in rules.seed:
        return None
    if obj not in rules.objects:
        return FindingKind.RULE_UNKNOWN_OBJECT, f"unknown object {obj}; not in policies/policy.csv"
    return FindingKind.RULE_NOT_IN_SEED, "not in policies/policy.csv"


# --- (a) bindings --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Holder:
    """A user or token as a binding needs it: its department, and why it should hold nothing (if it should not)."""

    department: str
    gone: tuple[FindingKind, str] | None


def _holders(session: Session, now: datetime) -> dict[str, _Holder]:
    holders: dict[str, _Holder] = {}
    users = session.execute(
        select(UserAccount.username, UserAccount.active, Department.code).join(
            Department, UserAccount.department_id == Department.id
        )
    )
    for username, active, department in users:
        inactive = None if active else (FindingKind.BINDING_INACTIVE_USER, f"user {username} is deactivated")
        holders[USER + username] = _Holder(department, inactive)
    tokens = session.execute(
        select(MachineToken.id, MachineToken.revoked_at, MachineToken.expires_at, Department.code).join(
            Department, MachineToken.department_id == Department.id
        )
    )
    for token_id, revoked_at, expires_at, department in tokens:
        gone = None
        if revoked_at is not None:
            gone = (FindingKind.BINDING_REVOKED_TOKEN, f"token {token_id} was revoked at {revoked_at:%Y-%m-%d %H:%M}")
        elif expires_at <= now:
            gone = (FindingKind.BINDING_EXPIRED_TOKEN, f"token {token_id} expired at {expires_at:%Y-%m-%d %H:%M}")
        holders[f"{TOKEN}{token_id}"] = _Holder(department, gone)
    return holders


def _binding_drift(session: Session, bindings: list[CasbinRule], now: datetime) -> Iterator[Finding]:
    holders = _holders(session, now)
    departments = set(session.scalars(select(Department.code)))
    for rule in bindings:
        subject, role, domain = str(rule.v0), str(rule.v1), str(rule.v2)
        shown = ["g", subject, role, domain]
        names = {"rule": shown, "rule_id": rule.id, "subject": subject, "role": role, "department": domain}
        for kind, why in _binding_problems(subject, role, domain, holders.get(subject), departments):
            yield _finding(kind, f"{', '.join(shown)}: {why}", **names)


def _binding_problems(
    subject: str, role: str, domain: str, holder: _Holder | None, departments: set[str]
) -> Iterator[tuple[FindingKind, str]]:
    if holder is None:
        yield FindingKind.BINDING_UNKNOWN_SUBJECT, f"no user or machine token {subject}"
    elif holder.gone is not None:
        yield holder.gone
    known_domain = domain == policy.EVERYWHERE or domain in departments
    if not known_domain:
        yield FindingKind.BINDING_UNKNOWN_DEPARTMENT, f"no department {domain}"
    wrong_role = _role_problem(subject, role)
    if wrong_role is not None:
        yield FindingKind.BINDING_WRONG_ROLE, wrong_role
    elif holder is not None and known_domain:
        expected = policy.EVERYWHERE if role in policy.GLOBAL_ROLES else holder.department
        if domain != expected:
            where = "everywhere (*)" if expected == policy.EVERYWHERE else f"in {expected}, its own department"
            yield FindingKind.BINDING_WRONG_DEPARTMENT, f"{subject} holds {role} {where}, not in {domain}"


def _role_problem(subject: str, role: str) -> str | None:
    if role not in policy.ROLES:
        return f"unknown role {role}"
    if subject.startswith(TOKEN) and role != MACHINE_ROLE:
        return f"a machine token holds {MACHINE_ROLE} only, not {role}"
    if subject.startswith(USER) and role == MACHINE_ROLE:
        return f"{MACHINE_ROLE} is the role of machine tokens, not of users"
    return None


# --- (b) and (c) subscriptions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Active:
    id: int
    item_id: int
    item: str | None  # None: the item row is gone
    item_status: str | None
    sharing_type: str | None
    consumer: str | None  # None: the consumer department row is gone
    fields: list[str]
    masked_fields: frozenset[str]
    approved_level: int | None
    provider_decided_by: str | None
    officer_decided_by: str | None
    kind: str = "read"  # verify: decided at its key's level too


@dataclass(frozen=True)
class _Field:
    level: int
    reviewed: bool
    key: bool = False


def _active_subscriptions(session: Session, now: datetime) -> list[_Active]:
    """Active subscriptions whose period is not over (an ended one is served no more, whatever its status says),
    with their item and consumer as they are now (outer joins: either may be gone)."""
    rows = session.execute(
        select(Subscription, CatalogItem.code, CatalogItem.status, CatalogItem.sharing_type, Department.code)
        .outerjoin(CatalogItem, CatalogItem.id == Subscription.item_id)
        .outerjoin(Department, Department.id == Subscription.consumer_department_id)
        .where(Subscription.status == "active", or_(Subscription.expires_at.is_(None), Subscription.expires_at > now))
        .order_by(Subscription.id)
    )
    return [
        _Active(s.id, s.item_id, code, status, sharing, consumer, list(s.fields), frozenset(s.masked_fields or ()),
                s.approved_level, s.provider_decided_by, s.officer_decided_by, s.kind)
        for s, code, status, sharing, consumer in rows
    ]  # fmt: skip


def _fields_of(session: Session, item_ids: Iterable[int]) -> dict[int, dict[str, _Field]]:
    ids = sorted(set(item_ids))
    found: dict[int, dict[str, _Field]] = {item_id: {} for item_id in ids}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(ItemField.item_id, ItemField.name, ItemField.level, ItemField.reviewed_at, ItemField.is_key).where(
                ItemField.item_id.in_(ids[start : start + 500])
            )
        )
        for item_id, name, level, reviewed_at, key in rows:
            found[item_id][name] = _Field(level, reviewed_at is not None, key)
    return found


def _reapproved_levels(session: Session, candidates: list[_Active]) -> dict[int, int]:
    """The highest level each subscription was re-approved at (``subscription.reapprove`` audit events), for the
    few whose columns record no decision for their level (found by item code: the audit trail's index)."""
    codes = sorted({str(s.item) for s in candidates})
    ids = {s.id for s in candidates}
    levels: dict[int, int] = {}
    for start in range(0, len(codes), 500):
        rows = session.execute(
            select(AuditEvent.subscription_id, AuditEvent.detail).where(
                AuditEvent.item_code.in_(codes[start : start + 500]),
                AuditEvent.action.in_(REAPPROVE),
                AuditEvent.outcome == "done",
            )
        )
        for subscription_id, detail in rows:
            level = (detail or {}).get("level")
            if subscription_id in ids and isinstance(level, int):
                levels[subscription_id] = max(level, levels.get(subscription_id, level))
    return levels


def _subscription_drift(session: Session, active: list[_Active], rules: DriftRules) -> list[Finding]:
    fields = _fields_of(session, [s.item_id for s in active if s.item is not None])
    undecided = [s for s in active if s.item is not None and _needs_decision_evidence(s, rules)]
    reapproved = _reapproved_levels(session, undecided) if undecided else {}
    findings: list[Finding] = []
    for subscription in active:
        declared = fields.get(subscription.item_id, {})
        findings += _gone(subscription, declared)
        if subscription.item is not None:
            findings += _over_granted(subscription, declared, rules, reapproved.get(subscription.id))
    return findings


def _names(s: _Active, **values: Any) -> dict[str, Any]:
    return {"subscription_id": s.id, "item": s.item, "consumer": s.consumer, "approved_level": s.approved_level,
            **values}  # fmt: skip


def _gone(s: _Active, declared: dict[str, _Field]) -> Iterator[Finding]:
    """(b): what the subscription names that is no longer there to be served."""
    about = f"subscription {s.id}"
    if s.item is None:
        yield _finding(FindingKind.SUBSCRIPTION_ITEM_MISSING, f"{about}: its item (id {s.item_id}) no longer exists",
                       **_names(s, fields=s.fields))  # fmt: skip
    else:
        if s.item_status != ItemStatus.PUBLISHED:
            yield _finding(FindingKind.SUBSCRIPTION_ITEM_NOT_PUBLISHED,
                           f"{about}: item {s.item} is {s.item_status}, not published", **_names(s))  # fmt: skip
        if s.sharing_type == SharingType.NOT_SHARED:
            yield _finding(FindingKind.SUBSCRIPTION_ITEM_NOT_SHARED,
                           f"{about}: item {s.item} is not shared (不予共享)", **_names(s))  # fmt: skip
        missing = [name for name in s.fields if name not in declared]
        if missing:
            yield _finding(FindingKind.SUBSCRIPTION_FIELDS_MISSING,
                           f"{about}: item {s.item} has no field(s) {', '.join(missing)}",
                           **_names(s, fields=missing))  # fmt: skip
    if s.consumer is None:
        yield _finding(FindingKind.SUBSCRIPTION_CONSUMER_MISSING,
                       f"{about}: its consumer department no longer exists", **_names(s))  # fmt: skip


def _needs_decision_evidence(s: _Active, rules: DriftRules) -> bool:
    """Whether the columns alone record no decision for the subscription's level (the audit trail may)."""
    if s.approved_level is None:
        return False
    no_officer = s.approved_level >= rules.officer_level and s.officer_decided_by is None
    no_provider = s.approved_level > rules.auto_approve_max_level and s.provider_decided_by in (None, AUTOMATIC)
    return no_officer or no_provider


def _over_granted(
    s: _Active, declared: dict[str, _Field], rules: DriftRules, reapproved: int | None
) -> Iterator[Finding]:
    """(c): what the subscription grants beyond its fields' approved levels and its recorded decisions."""
    about = f"subscription {s.id} to {s.item}"
    covered = {name: declared[name] for name in s.fields if name in declared}
    unreviewed = [name for name, field in covered.items() if not field.reviewed]
    if unreviewed:
        yield _finding(FindingKind.GRANT_FIELD_UNREVIEWED,
                       f"{about}: field(s) {', '.join(unreviewed)} never approved by a data officer",
                       **_names(s, fields=unreviewed, levels=_levels(covered, unreviewed)))  # fmt: skip
    approved = s.approved_level
    if approved is None:
        yield _finding(FindingKind.GRANT_WITHOUT_LEVEL, f"{about}: active with no approved level", **_names(s))
        return
    decided = {**covered, **({name: field for name, field in declared.items() if field.key} if s.kind == "verify"
                             else {})}  # a verification is decided at its key's level too  # fmt: skip
    yield from _level_drift(s, covered, decided, about, approved)
    yield from _decision_drift(s, rules, about, approved, reapproved)


def _level_drift(
    s: _Active, covered: dict[str, _Field], decided: dict[str, _Field], about: str, approved: int
) -> Iterator[Finding]:
    above = [name for name, field in covered.items() if field.level > approved and name not in s.masked_fields]
    if above:
        yield _finding(FindingKind.GRANT_UNMASKED_ABOVE_LEVEL,
                       f"{about}: field(s) {', '.join(above)} above approved level {approved} are not in its masked "
                       "fields", **_names(s, fields=above, levels=_levels(covered, above)))  # fmt: skip
    top = max((field.level for field in decided.values()), default=None)
    if top is not None and approved > top:
        yield _finding(FindingKind.GRANT_ABOVE_FIELDS,
                       f"{about}: approved level {approved} is above its fields' highest level {top}",
                       **_names(s, fields=list(covered), levels=_levels(covered, covered)))  # fmt: skip


def _decision_drift(
    s: _Active, rules: DriftRules, about: str, approved: int, reapproved: int | None
) -> Iterator[Finding]:
    re_decided = reapproved is not None and reapproved >= approved
    if approved >= rules.officer_level and s.officer_decided_by is None and not re_decided:
        yield _finding(FindingKind.GRANT_WITHOUT_OFFICER,
                       f"{about}: approved level {approved} reaches the officer level {rules.officer_level} but no "
                       "data officer decided it", **_names(s))  # fmt: skip
    if approved > rules.auto_approve_max_level and s.provider_decided_by in (None, AUTOMATIC) and not re_decided:
        by = "approved automatically" if s.provider_decided_by == AUTOMATIC else "no provider decided it"
        yield _finding(FindingKind.GRANT_WITHOUT_PROVIDER,
                       f"{about}: approved level {approved} is above the automatic maximum "
                       f"{rules.auto_approve_max_level} but {by}", **_names(s))  # fmt: skip


def _levels(covered: dict[str, _Field], names: Iterable[str]) -> dict[str, int]:
    return {name: covered[name].level for name in names}
