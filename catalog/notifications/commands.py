"""``datashare notifications …``: deliveries (list, retry, drain now), people's e-mail addresses and departments'
webhooks. A change acts for a named person whom the Casbin policy allows it, as the API's guard decides (a refusal
is audited and exits 2); listings only read."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, TypeVar

import typer

# Defined before the command line's helpers are imported: ``catalog.cli`` imports this module at its end.
notifications_app: typer.Typer = typer.Typer(
    help="Notifications: deliveries, e-mail addresses, departments' webhooks.", no_args_is_help=True
)

from sqlalchemy.orm import Session  # noqa: E402

from catalog.access.service import Principal  # noqa: E402
from catalog.cli import AsJson, err, out, unit_of_work  # noqa: E402
from catalog.errors import Forbidden, NotFound  # noqa: E402

REFUSED = 2
EVERYWHERE = "*"
Result = TypeVar("Result")
As = Annotated[str, typer.Option("--as", help="The username of the person acting (checked against the policy).")]


@notifications_app.command("deliveries")
def deliveries(
    failed: Annotated[bool, typer.Option("--failed", help="Only those retrying or given up.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Deliveries of notifications (mail, webhooks), newest first, with their attempts and last error."""
    from catalog.notifications import outbox

    with unit_of_work() as session:
        rows = outbox.listing(session, failed_only=failed, limit=limit)
        failing = outbox.failing_deliveries(session)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(row) for row in rows], default=str, ensure_ascii=False, indent=2))
        return
    for row in rows:
        when = f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        out.print(f"{row.id}  {row.status:<8}  {row.channel:<7}  {row.target}  {row.kind}  {row.item_code or '-'}  "
                  f"attempts {row.attempts}  next {when}  {row.last_error or ''}")  # fmt: skip
    out.print(f"{len(rows)} deliveries; failing now: " + ", ".join(f"{k} {v}" for k, v in failing.items()) + ".")


@notifications_app.command("retry")
def retry(delivery_id: int, username: As) -> None:
    """Make a failing delivery due at once (ops)."""
    from catalog.notifications import outbox

    read = _acting(username, EVERYWHERE, "notification", "operate",
                   lambda session, who: outbox.retry_now(session, delivery_id, who))  # fmt: skip
    out.print(f"delivery {read.id} is due again ({read.status}).")


@notifications_app.command("deliver")
def deliver(limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100) -> None:
    """Send the due deliveries now (what the deliver_notifications DAG does every minute)."""
    from catalog.cli import _engine
    from catalog.notifications.outbox import deliver_pending
    from catalog.settings import get_settings

    engine = _engine()
    try:
        report = deliver_pending(engine, get_settings(), limit=limit)
    finally:
        engine.dispose()
    out.print(", ".join(f"{key} {value}" for key, value in report.as_dict().items()))


@notifications_app.command("digest")
def digest(day: Annotated[str | None, typer.Argument(help="YYYY-MM-DD (UTC); default yesterday.")] = None) -> None:
    """Make the data officers' digest of a day's detection proposals (once per day)."""
    from catalog.db import utcnow
    from catalog.notifications.notices import detection_digest

    which = date.fromisoformat(day) if day else utcnow().date() - timedelta(days=1)
    with unit_of_work() as session:
        made = detection_digest(session, which)
    out.print(f"digest of {which}: " + ("made." if made is not None else "nothing to send, or already made."))


@notifications_app.command("email")
def email(
    user: str,
    address: Annotated[str | None, typer.Argument(help="The address; leave out with --clear.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Mail this user nothing.")] = False,
    username: As = "",
) -> None:
    """Set the address a user's notifications are mailed to (platform admins)."""
    from catalog.notifications import channels

    if (address is None) != clear:
        err.print("give an address, or --clear", style="red")
        raise typer.Exit(1)
    _acting(username, EVERYWHERE, "users", "manage",
            lambda session, who: channels.set_email(session, user, address, who))  # fmt: skip
    out.print(f"{user}: " + ("no e-mail address." if clear else "e-mail address set."))


@notifications_app.command("channels")
def channel_listing(
    department: Annotated[str | None, typer.Option(help="Only this department's.")] = None, as_json: AsJson = False
) -> None:
    """Departments' webhooks, and the environment variable each one's secret is read from."""
    from catalog.notifications import channels

    with unit_of_work() as session:
        rows = channels.channels_of(session, department)
    if as_json:
        typer.echo(json.dumps([row.model_dump(mode="json") for row in rows], ensure_ascii=False, indent=2))
        return
    for row in rows:
        state = "enabled" if row.enabled else "disabled"
        out.print(f"{row.id}  {row.department}  {row.name}  {state}  {row.url}  secret: ${row.secret_variable}")
    out.print(f"{len(rows)} channel(s).")


@notifications_app.command("channel-add")
def channel_add(department: str, name: str, url: str, username: As) -> None:
    """Add a department's webhook (its stewards, platform admins); prints the variable to put its secret in."""
    from catalog.notifications import channels

    body = channels.ChannelCreate(name=name, url=url)
    read = _acting(username, department, "notification_channel", "manage",
                   lambda session, who: channels.create_channel(session, department, body, who))  # fmt: skip
    out.print(f"channel {read.id} added; set its signing secret in ${read.secret_variable} where workers run.")


@notifications_app.command("channel-set")
def channel_set(
    channel_id: int,
    username: As,
    url: Annotated[str | None, typer.Option(help="A new URL.")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="Send on it, or not.")] = None,
) -> None:
    """Change a webhook's URL, or enable or disable it."""
    from catalog.notifications import channels

    with unit_of_work() as session:
        department = channels.department_of_channel(session, channel_id)
    body = channels.ChannelUpdate(url=url, enabled=enabled)
    read = _acting(username, department, "notification_channel", "manage",
                   lambda session, who: channels.update_channel(session, channel_id, body, who))  # fmt: skip
    out.print(f"channel {read.id}: {'enabled' if read.enabled else 'disabled'}, {read.url}")


def _acting(
    username: str, department: str, obj: str, action: str, work: Callable[[Session, Principal], Result]
) -> Result:
    """``work`` as the named person if the policy allows them; otherwise the refusal is audited and exits 2."""
    from catalog.access.service import acting_user
    from catalog.audit import service as audit

    refusal: NotFound | Forbidden | None = None
    with unit_of_work() as session:
        try:
            who = acting_user(session, username, department, obj, action)
        except (NotFound, Forbidden) as error:
            audit.record(session, f"user:{username}", None, f"{obj}.{action}", "denied", reason=error.code,
                         on_behalf_of=department)  # fmt: skip
            refusal = error
        else:
            return work(session, who)
    err.print(refusal.message if refusal else "refused", style="red")
    raise typer.Exit(REFUSED)
