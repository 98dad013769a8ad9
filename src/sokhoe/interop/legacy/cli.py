"""``sokhoe import`` commands (registered by ``sokhoe.cli``)."""

from __future__ import annotations

import typer

import_app = typer.Typer(help="Import legacy exports (CSV, Excel).", no_args_is_help=True)
