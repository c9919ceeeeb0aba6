"""``datashare policy …``: the Casbin policy and the grants it rests on, from the command line."""

from __future__ import annotations

import typer

policy_app = typer.Typer(help="Access policy: drift checks.", no_args_is_help=True)
