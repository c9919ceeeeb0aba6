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


def seed_demo_principals(session: Session, data_dir: Path) -> Path:
    """Create the demo principals once; later runs keep them (and the file) as they are."""
    path = data_dir / CREDENTIALS_FILE
    if path.exists() and session.scalar(select(UserAccount.id).limit(1)) is not None:
        return path
    departments = list(session.scalars(select(Department.code).order_by(Department.code)))
    credentials: dict[str, Any] = {"users": {}, "tokens": {}}
    people = [(f"{code}-steward", f"{code} 数据管理员", "steward", code) for code in departments]
    people += [(f"{code}-user", f"{code} 业务用户", "user", code) for code in departments]
    home = BUREAU if BUREAU in departments else departments[0]
    people += [(name, display, role, home) for name, display, role in GLOBAL_PEOPLE]
    for username, display_name, role, department in people:
        if session.scalar(select(UserAccount.id).where(UserAccount.username == username)) is not None:
            continue
        password = secrets.token_urlsafe(12)
        service.create_user(session, department, username, display_name, password, [role], created_by=SEEDED_BY)
        credentials["users"][username] = {"password": password, "department": department, "role": role}
    for code in departments:
        _, secret = service.create_machine_token(session, code, f"{code} demo system", TOKEN_DAYS, SEEDED_BY)
        credentials["tokens"][code] = secret
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(credentials, ensure_ascii=False, indent=2), encoding="utf-8")
    os.chmod(path, 0o600)
    return path
