"""``datashare data verify``: verification look-ups (数据核验) from the command line, as a named user, through the same
checks, masking and audit as ``POST /items/{code}/verify``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer

from catalog.cli import AsJson, out, unit_of_work

data_app = typer.Typer(help="Shared data: verification look-ups.", no_args_is_help=True)


@data_app.command("verify")
def verify(
    item: Annotated[str, typer.Argument(help="The item's code.")],
    records: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV: a header line of field names, then one record a line.",
        ),
    ],
    as_user: Annotated[str, typer.Option("--as", help="The user the look-ups are made for (and audited as).")],
    as_json: AsJson = False,
) -> None:
    """Each record (the item's key, and any field the subscription shows unmasked) answered match or no match
    against the current version, with the granted fields of a match masked as reads are. Needs an active
    subscription of the user's department: a verification subscription, or a read one that shows the key unmasked.
    Up to 1,000 records; audited with the counts, never the values."""  # fmt: skip
    from catalog.access.service import acting_user_at_home
    from catalog.audit import service as audit
    from catalog.classification.masking import pseudonym_key
    from catalog.delivery import service as delivery
    from catalog.delivery import verification
    from catalog.delivery.access_cache import AccessCache
    from catalog.settings import get_settings

    with records.open(encoding="utf-8-sig", newline="") as handle:
        rows = [{name: value.strip() for name, value in row.items() if name and value and value.strip()}
                for row in csv.DictReader(handle)]  # fmt: skip
    settings = get_settings()
    cache = AccessCache(0, pseudonym_key(settings.secret_key.get_secret_value()))
    with unit_of_work() as session:
        principal = acting_user_at_home(session, as_user, "data", "read")
        grant = delivery.grant_for(session, cache, principal, item, verifying=True)
        found = verification.verify(session.connection(), session, cache, grant, rows)
        audit.write(session.connection(), verification.audit_event(principal, grant, found))
    if as_json:
        typer.echo(json.dumps({"item": item, "version": found.version, "key": found.key, "fields": found.fields,
                               "masked_fields": found.masked_fields, "results": found.results},
                              ensure_ascii=False, indent=2))  # fmt: skip
        return
    out.print(f"{item} version {found.version}: {found.matched} of {len(found.results)} record(s) match "
              f"(key: {', '.join(found.key)}; masked: {', '.join(found.masked_fields) or 'none'})")  # fmt: skip
    for number, result in enumerate(found.results, 1):
        shown = result["fields"]
        fields = "; ".join(f"{name}={shown[name]}" for name in found.fields) if shown else ""
        out.print(f"{number}\t{'match' if result['match'] else 'no match'}\t{fields}")
