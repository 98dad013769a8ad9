"""``sokhoe view`` and ``sokhoe warehouse`` commands (registered by ``sokhoe.cli``)."""

from __future__ import annotations

import typer

view_app = typer.Typer(help="SQL on FHIR v2 ViewDefinitions.", no_args_is_help=True)
warehouse_app = typer.Typer(help="The de-identified warehouse.", no_args_is_help=True)
