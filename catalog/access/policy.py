"""The Casbin policy: its files in ``policies/``, its rows in ``casbin_rule``, and the enforcer that reads them.

Permissions (p rules: role, object, action) are owned by ``policies/policy.csv`` and synced into the database;
role bindings (g rules: subject, role, department or ``*``) are data, written when users and tokens are made.
Every change raises ``policy_revision`` in the same transaction, and an enforcer reloads when it sees the
revision move (API processes look with every poll of the access change log, ``catalog.delivery.access_cache``).
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import casbin
from casbin import persist
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from catalog.access.models import CasbinRule, PolicyRevision
from catalog.audit import service as audit

POLICIES = Path(__file__).resolve().parents[2] / "policies"
MODEL_FILE = POLICIES / "model.conf"
SEED_FILE = POLICIES / "policy.csv"
SEED_SYNC_ACTOR = "system:policy-seed"  # who the audit trail names for a schema upgrade's sync of the seed
EVERYWHERE = "*"  # the department of a role held in every department
GLOBAL_ROLES = frozenset({"platform_admin", "data_officer", "ops"})
DEPARTMENT_ROLES = frozenset({"steward", "user", "system"})
ROLES = GLOBAL_ROLES | DEPARTMENT_ROLES
MAX_REMEMBERED = 200_000  # decisions kept per process (a few tens of MB at most)


def seed_permissions(path: Path = SEED_FILE) -> list[tuple[str, str, str]]:
    """The (role, object, action) rules of the seed file."""
    rules = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, skipinitialspace=True):
            if not row or row[0].startswith("#"):
                continue
            if row[0] != "p" or len(row) != 4:
                raise ValueError(f"{path}: only 'p, role, object, action' rules belong here, not {row}")
            rules.append((row[1], row[2], row[3]))
    return rules


def sync_seed_permissions(session: Session) -> bool:
    """Make the database's p rules exactly the seed file's; True when anything changed."""
    wanted = set(seed_permissions())
    stored = {
        (rule.v0, rule.v1, rule.v2): rule for rule in session.scalars(select(CasbinRule).where(CasbinRule.ptype == "p"))
    }
    missing = wanted - stored.keys()
    extra = stored.keys() - wanted
    for role, obj, action in sorted(missing):
        session.add(CasbinRule(ptype="p", v0=role, v1=obj, v2=action))
    for key in extra:
        session.delete(stored[key])  # type: ignore[index]
    if missing or extra:
        bump_revision(session)
        added, removed = [list(rule) for rule in sorted(missing)], [list(rule) for rule in sorted(extra)]
        audit.record(session, SEED_SYNC_ACTOR, None, "policy.sync", "done", seed_file=SEED_FILE.name, added=added,
                     removed=removed)  # fmt: skip
    return bool(missing or extra)


def grant_role(session: Session, subject: str, role: str, department: str) -> None:
    """Bind a subject (user:<name>, token:<id>) to a role in a department; global roles hold everywhere."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(sorted(ROLES))}")
    scope = EVERYWHERE if role in GLOBAL_ROLES else department
    exists = session.scalar(
        select(CasbinRule.id).where(
            CasbinRule.ptype == "g", CasbinRule.v0 == subject, CasbinRule.v1 == role, CasbinRule.v2 == scope
        )
    )
    if exists is None:
        session.add(CasbinRule(ptype="g", v0=subject, v1=role, v2=scope))
        bump_revision(session)


def revoke_roles(session: Session, subject: str) -> None:
    """Remove every role binding of a subject (a revoked token, a deactivated user)."""
    result = session.execute(delete(CasbinRule).where(CasbinRule.ptype == "g", CasbinRule.v0 == subject))
    if result.rowcount:  # type: ignore[attr-defined]
        bump_revision(session)


def roles_of(session: Session, subject: str) -> list[tuple[str, str]]:
    """(role, department or *) pairs of a subject."""
    rows = session.execute(
        select(CasbinRule.v1, CasbinRule.v2).where(CasbinRule.ptype == "g", CasbinRule.v0 == subject)
    ).all()
    return sorted((str(role), str(scope)) for role, scope in rows)


def bump_revision(session: Session) -> None:
    session.flush()
    session.execute(update(PolicyRevision).where(PolicyRevision.id == 1).values(revision=PolicyRevision.revision + 1))


def current_revision(session: Session) -> int:
    return session.scalar(select(PolicyRevision.revision).where(PolicyRevision.id == 1)) or 0


class SessionAdapter(persist.Adapter):  # type: ignore[misc]
    """Loads the policy through the caller's session: the same transaction (and, on SQLite, the same lock)
    as the request that asks, rather than a connection of its own."""

    def __init__(self) -> None:
        self.session: Session | None = None

    def load_policy(self, model: Any) -> None:
        if self.session is None:
            return  # the enforcer's construction: the policy is loaded by the first refresh
        for rule in self.session.scalars(select(CasbinRule).order_by(CasbinRule.id)):
            values = [rule.ptype, rule.v0, rule.v1, rule.v2, rule.v3, rule.v4, rule.v5]
            persist.load_policy_line(", ".join(value for value in values if value is not None), model)


class PolicyEnforcer:
    """A Casbin enforcer over the policy in the database, reloaded when the policy's revision moves."""

    def __init__(self, model_file: Path = MODEL_FILE) -> None:
        self._adapter = SessionAdapter()
        self._enforcer = casbin.Enforcer(str(model_file), self._adapter)
        self._revision: int | None = None
        self._lock = threading.Lock()
        self._decided: dict[tuple[str, str, str, str], bool] = {}  # valid for the loaded revision only

    def refresh(self, session: Session, revision: int | None = None) -> None:
        """Reload the policy if it changed since it was loaded (``revision``: the current one, if known)."""
        revision = current_revision(session) if revision is None else revision
        if revision == self._revision:
            return
        with self._lock:
            if revision != self._revision:
                self._adapter.session = session
                try:
                    self._enforcer.load_policy()
                finally:
                    self._adapter.session = None
                self._decided = {}
                self._revision = revision

    def rules_loaded(self) -> int:
        """How many permission rules the loaded policy has (0 before the first load)."""
        with self._lock:
            return len(self._enforcer.get_policy()) if self._revision is not None else 0

    def allows(self, subject: str, department: str, obj: str, action: str) -> bool:
        """The policy's answer; remembered until the policy changes (it depends on nothing else)."""
        key = (subject, department, obj, action)
        decided = self._decided.get(key)
        if decided is None:
            with self._lock:  # never against a policy half reloaded, never remembered past a reload
                decided = self._decided[key] = bool(self._enforcer.enforce(subject, department, obj, action))
                if len(self._decided) > MAX_REMEMBERED:
                    self._decided = {key: decided}
        return decided
