"""The ``sokhoe demo`` command body."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from sokhoe.demo.writer import FORMATS, write_demo


def demo_command(patients: int, seed: int, out: Path, fmt: str) -> None:
    """Write the demo population and print a one-line summary."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    started = time.perf_counter()
    summary = write_demo(out, patients, seed, fmt, progress=True)
    elapsed = max(time.perf_counter() - started, 1e-9)
    typer.echo(
        f"{summary.patients} people, {summary.resources} resources in {len(summary.files)} "
        f"files under {out} ({summary.resources / elapsed:,.0f} resources/s)"
    )
