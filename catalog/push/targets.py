"""A subscription's delivery targets, chosen by the consumer's stewards, and the pause of its deliveries.

Nothing secret is stored: a webhook's signing secret and a database's connection string live in an environment
variable (or the secrets backend that fills it) whose name is derived from the department and the target's name,
never chosen, so no one can point a target at another secret of the platform. Where a target may point is checked
here: a webhook at http(s) without credentials in the URL (and, when sent, at allowed hosts only); a file drop in the
department's own folder, under the platform's outbound folder or an object-store root ops allow; a database table by
plain identifiers. Who may change them
is the policy's business (the edges check ``delivery_target manage`` in the consumer's department); every change is
audited here, in its transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog import storage
from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.errors import Conflict, DomainError, NotFound
from catalog.notifications.channels import CHANNEL_NAME, URL_TEXT
from catalog.push.models import DeliveryTarget
from catalog.settings import Settings
from catalog.subscriptions.models import Subscription

IDENTIFIER = r"^[a-z_][a-z0-9_]{0,49}$"  # a PostgreSQL name that needs no quoting, with room for a suffix
MAX_TARGETS_PER_SUBSCRIPTION = 5


class TargetNotFound(NotFound):
    code = "delivery_target_not_found"


class TargetExists(Conflict):
    code = "delivery_target_exists"


class InvalidTarget(DomainError):
    code = "invalid_delivery_target"


class TargetCreate(BaseModel):
    name: str = Field(pattern=CHANNEL_NAME, description="Lower-case letters, digits, hyphens; unique per department.")
    kind: Literal["webhook", "database", "file"]
    url: str | None = Field(default=None, min_length=8, max_length=2000, pattern=URL_TEXT,
                            description="webhook: the http(s) URL notices are POSTed to; file: the folder "
                            "(an fsspec URL) files are dropped in.")  # fmt: skip
    db_schema: str | None = Field(default=None, pattern=IDENTIFIER, description="database: the schema written to.")
    db_table: str | None = Field(default=None, pattern=IDENTIFIER, description="database: the table written to.")
    mode: Literal["full", "changed"] = Field(
        default="full",
        description="database: full (the whole version replaces the table at once) or changed (only the rows whose "
        "key is new, changed or gone since the version delivered before).",
    )
    file_format: Literal["csv", "parquet"] | None = Field(default=None, description="file: csv or parquet.")

    @model_validator(mode="after")
    def _complete(self) -> TargetCreate:
        needs = {"webhook": ("url",), "database": ("db_schema", "db_table"), "file": ("url", "file_format")}
        missing = [name for name in needs[self.kind] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} target needs {', '.join(missing)}")
        return self


class TargetRead(BaseModel):
    id: int
    subscription_id: int
    department: str
    name: str
    kind: str
    url: str | None
    db_schema: str | None
    db_table: str | None
    mode: str
    file_format: str | None
    secret_variable: str | None = Field(
        description="The environment variable (of the workers that deliver) holding the webhook's signing secret or "
        "the database's connection string."
    )
    created_by: str
    created_at: datetime


def secret_variable(department: str, name: str, kind: str) -> str | None:
    """``<DEPARTMENT>_<NAME>_DELIVERY_SECRET`` (a webhook's) or ``…_DELIVERY_DSN`` (a database's); a file drop has
    none (an object store's credentials are the workers', as for sources)."""
    suffix = {"webhook": "DELIVERY_SECRET", "database": "DELIVERY_DSN"}.get(kind)
    return None if suffix is None else f"{department}_{name}_{suffix}".upper().replace("-", "_")


def create(session: Session, settings: Settings, subscription_id: int, body: TargetCreate,
           actor: Principal) -> TargetRead:  # fmt: skip
    """A target of the subscription. A name once used by the department is its own for good (a removed target is kept
    as a tombstone and taken up again by the same name), so its secret variable is never another department's."""
    subscription = _subscription(session, subscription_id)
    if subscription.kind != "read" or subscription.status not in ("requested", "provider_approved", "active"):
        raise InvalidTarget(f"subscription {subscription_id} is {subscription.status} for {subscription.kind}: only an "
                            "open read subscription's versions are delivered")  # fmt: skip
    department = str(
        session.scalar(select(Department.code).where(Department.id == subscription.consumer_department_id))
    )
    held = session.scalar(select(func.count()).where(DeliveryTarget.subscription_id == subscription_id,
                                                     DeliveryTarget.deleted_at.is_(None))) or 0  # fmt: skip
    if held >= MAX_TARGETS_PER_SUBSCRIPTION:
        raise InvalidTarget(f"subscription {subscription_id} has {held} targets, the most it may have")
    values = {"subscription_id": subscription_id, "kind": body.kind, "url": _checked_url(body, settings, department),
              "db_schema": body.db_schema, "db_table": body.db_table,
              "mode": body.mode if body.kind == "database" else "full", "file_format": body.file_format,
              "secret_variable": secret_variable(department, body.name, body.kind), "created_by": actor.subject,
              "created_at": utcnow(), "deleted_at": None}  # fmt: skip
    owner = subscription.consumer_department_id
    target = session.scalar(
        select(DeliveryTarget).where(DeliveryTarget.department_id == owner, DeliveryTarget.name == body.name)
    )
    if target is not None and target.deleted_at is None:
        raise TargetExists(f"{department} already has a delivery target named {body.name}")
    if target is not None and target.kind != body.kind:  # its variable stays claimed: another kind needs another name
        raise TargetExists(f"{department}'s target named {body.name} was a {target.kind} target: a {body.kind} "
                           "target needs a name of its own")  # fmt: skip
    try:
        with session.begin_nested():
            if target is None:
                target = DeliveryTarget(department_id=subscription.consumer_department_id, name=body.name, **values)
                session.add(target)
            else:  # the department's own name, taken up again
                for key, value in values.items():
                    setattr(target, key, value)
            session.flush()
    except IntegrityError:  # the variable claimed by another target (department codes and names meet at a hyphen)
        raise TargetExists(f"the variable {values['secret_variable']} is taken: choose another name") from None
    _audit(session, actor, "delivery_target.create", target, department, kind=target.kind)
    return _read(target, department)


def delete(session: Session, target_id: int, actor: Principal) -> None:
    """Removed from the subscription; kept as a tombstone, so that its name and secret variable stay the
    department's and its delivery records keep naming it."""
    target, department = get(session, target_id)
    _audit(session, actor, "delivery_target.delete", target, department, kind=target.kind)
    target.deleted_at = utcnow()
    session.flush()


def get(session: Session, target_id: int) -> tuple[DeliveryTarget, str]:
    row = session.execute(
        select(DeliveryTarget, Department.code)
        .join(Department, Department.id == DeliveryTarget.department_id)
        .where(DeliveryTarget.id == target_id, DeliveryTarget.deleted_at.is_(None))
    ).one_or_none()
    if row is None:
        raise TargetNotFound(f"delivery target {target_id} does not exist")
    return row[0], row[1]


def of_subscription(session: Session, subscription_id: int) -> list[TargetRead]:
    rows = session.execute(
        select(DeliveryTarget, Department.code)
        .join(Department, Department.id == DeliveryTarget.department_id)
        .where(DeliveryTarget.subscription_id == subscription_id, DeliveryTarget.deleted_at.is_(None))
        .order_by(DeliveryTarget.name)
    )
    return [_read(target, code) for target, code in rows]


def set_paused(session: Session, subscription_id: int, paused: bool, actor: Principal) -> bool:
    """Pause (or resume) sending the subscription's new versions to its targets; a resumed one gets the current
    version at the next delivery run."""
    subscription = _subscription(session, subscription_id)
    subscription.deliveries_paused = paused
    session.flush()
    audit.record(session, actor.subject, actor.department, "subscription.deliveries_paused", "done",
                 subscription_id=subscription_id, paused=paused)  # fmt: skip
    return paused


def _subscription(session: Session, subscription_id: int) -> Subscription:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    return subscription


def _checked_url(body: TargetCreate, settings: Settings, department: str) -> str | None:
    if body.url is None or body.kind == "database":
        return None
    parts = urlsplit(body.url)
    if parts.username or parts.password:
        raise InvalidTarget("a URL carries no credentials: they belong in the environment")
    if body.kind == "webhook":
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidTarget("a webhook URL is http:// or https:// with a host")
        return body.url
    return checked_drop(body.url, settings, department)


def checked_drop(url: str, settings: Settings, department: str) -> str:
    """A file drop's folder: the department's own, under the platform's outbound folder or under an object-store root
    ops allow (``DATASHARE_DELIVERY_FILE_ROOTS``); never another department's, never a root itself."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        folder = Path(parts.path).resolve()
        own = settings.resolved_delivery_dir / department
        if parts.netloc not in ("", "localhost") or not folder.is_relative_to(own):
            raise InvalidTarget(f"a local file drop is a folder of the department's, under {own} (file://{own}/…)")
        return f"file://{folder}"
    owned = [storage.canonical(root).child(department) for root in settings.delivery_file_roots]
    allowed = ", ".join([f"file://{settings.resolved_delivery_dir / department}", *(mine.url for mine in owned)])
    try:
        folder_url = storage.canonical(url)  # the one form every check compares (no '#', '..', '%', empty bucket...)
    except storage.CredentialsInURL as error:
        raise InvalidTarget(str(error)) from None
    except storage.UnsafeURL as error:
        raise InvalidTarget(f"a file drop's folder is under one of these: {allowed} ({error})") from None
    if not any(folder_url.within(mine) for mine in owned):
        raise InvalidTarget(f"a file drop's folder is under one of these: {allowed}")
    return folder_url.url


def _read(target: DeliveryTarget, department: str) -> TargetRead:
    return TargetRead(
        id=target.id, subscription_id=target.subscription_id, department=department, name=target.name,
        kind=target.kind, url=target.url, db_schema=target.db_schema, db_table=target.db_table, mode=target.mode,
        file_format=target.file_format, secret_variable=target.secret_variable, created_by=target.created_by,
        created_at=target.created_at,
    )  # fmt: skip


def _audit(session: Session, actor: Principal, action: str, target: DeliveryTarget, department: str,
           **detail: object) -> None:  # fmt: skip
    # The URL is not recorded: a webhook's may carry a token in its path.
    audit.record(session, actor.subject, actor.department, action, "done", subscription_id=target.subscription_id,
                 target=target.name, target_department=department, **detail)  # fmt: skip
