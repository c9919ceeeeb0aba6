"""``datashare audit …``: the audit trail from the command line."""

from __future__ import annotations

import typer

audit_app = typer.Typer(help="The audit trail: list, seal, verify, head.", no_args_is_help=True)
