"""``sokhoe hl7`` commands (registered by ``sokhoe.cli``)."""

from __future__ import annotations

import typer

hl7_app = typer.Typer(help="HL7 v2 over MLLP.", no_args_is_help=True)
