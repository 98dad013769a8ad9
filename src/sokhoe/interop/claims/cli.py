"""``sokhoe claims`` commands (registered by ``sokhoe.cli``)."""

from __future__ import annotations

import typer

claims_app = typer.Typer(help="Health-insurance appraisal XML.", no_args_is_help=True)
