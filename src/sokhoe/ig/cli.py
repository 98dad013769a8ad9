"""``sokhoe ig``: build the Vietnam core implementation guide package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ig_app = typer.Typer(help="The Vietnam core FHIR implementation guide.", no_args_is_help=True)


@ig_app.command("build")
def ig_build(
    out: Annotated[
        Path | None, typer.Option(help="Folder to write the package to (OUT/package/…)")
    ] = None,
    tgz: Annotated[Path | None, typer.Option(help="Also write the package as this .tgz")] = None,
) -> None:
    """Write the FHIR NPM package (package.json, .index.json, one JSON file per resource)."""
    from sokhoe.ig.package import NAME, write_dir, write_tgz
    from sokhoe.ig.package import files as package_files

    if out is None and tgz is None:
        raise typer.BadParameter("give --out DIR, --tgz FILE or both")
    if out is not None:
        written = write_dir(out)
        typer.echo(f"{NAME}: {len(written)} files in {out / 'package'}")
    if tgz is not None:
        write_tgz(tgz)
        typer.echo(f"{NAME}: {len(package_files())} files in {tgz}")
