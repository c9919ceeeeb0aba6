"""The access policy's health, for data officers: drift between the Casbin policy, the principals and the grants."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import GuardDep, PlatformDep, SessionDep
from catalog.access import drift
from catalog.access.policy import EVERYWHERE

router = APIRouter(prefix="/policy", tags=["policy"])


@router.get("/check", response_model=drift.DriftReport)
def check(session: SessionDep, guard: GuardDep, platform: PlatformDep) -> drift.DriftReport:
    """Casbin rules and role bindings that no current user, token or department explains, active subscriptions
    whose item, fields or consumer are gone, and grants above their fields' approved levels or recorded decisions
    (each finding with its kind and what it names; see ``policies/README.md``). Data officers and platform admins;
    audited as ``policy.check``. A report with findings is still a 200: the answer is the report."""
    guard.require(EVERYWHERE, *drift.PERMISSION)
    return drift.check(session, drift.DriftRules.of(platform.settings), guard.principal)
