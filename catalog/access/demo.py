"""Demo principals for the embedded default: a steward and a user per demo department, a data officer, an ops
person, a platform admin, and a machine token per department. Their secrets go to one local file (mode 600)
that the README's curl session reads; they are generated on this machine, never committed."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access import service
from catalog.access.models import UserAccount
from catalog.departments.models import Department

CREDENTIALS_FILE = "demo-credentials.json"
GLOBAL_PEOPLE = [
    ("officer", "数据官", "data_officer"),
    ("ops", "运维", "ops"),
    ("admin", "平台管理员", "platform_admin"),
]
TOKEN_DAYS = 90
SEEDED_BY = "demo"  # the actor recorded (token.created_by, the audit rows) for what the demo creates
BUREAU = "zsj"  # the district's data bureau (政务服务和数据管理局): where the platform-wide staff belong
MAIL_DOMAIN = "example.gov.cn"  # demo people's notifications are mailed to <username>@ this (a reserved name)


def seed_demo_principals(session: Session, data_dir: Path) -> Path:
    """Create the demo principals that are missing: all of them at first, later those of a department added to the
    demo since. Those already there, and their secrets in the file, are kept as they are."""
    path = data_dir / CREDENTIALS_FILE
    departments = list(session.scalars(select(Department.code).order_by(Department.code)))
    existing = set(session.scalars(select(UserAccount.username)))
    credentials = _read_credentials(path if existing else None)  # a fresh database: the file's secrets are void
    created = False
    for username, display_name, role, department in _people(departments):
        if username not in existing:
            password = secrets.token_urlsafe(12)
            user = service.create_user(session, department, username, display_name, password, [role],
                                       created_by=SEEDED_BY)  # fmt: skip
            user.email = f"{username}@{MAIL_DOMAIN}"
            credentials["users"][username] = {"password": password, "department": department, "role": role}
            created = True
    for code in departments:
        if code not in credentials["tokens"]:
            _, credentials["tokens"][code] = service.create_machine_token(session, code, f"{code} demo system",
                                                                          TOKEN_DAYS, SEEDED_BY)  # fmt: skip
            created = True
    if created or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(credentials, ensure_ascii=False, indent=2), encoding="utf-8")
        os.chmod(path, 0o600)
    return path


def _people(departments: list[str]) -> list[tuple[str, str, str, str]]:
    """(username, display name, role, department) of every demo person."""
    people = [(f"{code}-steward", f"{code} 数据管理员", "steward", code) for code in departments]
    people += [(f"{code}-user", f"{code} 业务用户", "user", code) for code in departments]
    home = BUREAU if BUREAU in departments else departments[0]
    return people + [(name, display, role, home) for name, display, role in GLOBAL_PEOPLE]


def _read_credentials(path: Path | None) -> dict[str, Any]:
    credentials: dict[str, Any] = {}
    if path is not None and path.exists():
        credentials = json.loads(path.read_text(encoding="utf-8"))
    return {"users": credentials.get("users", {}), "tokens": credentials.get("tokens", {})}
