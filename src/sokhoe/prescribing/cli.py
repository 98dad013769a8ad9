"""``sokhoe catalogue`` commands (registered by ``sokhoe.cli``): import, list and show."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sokhoe.access.guard import GuardedRepository
    from sokhoe.store.sql import SqlStore

catalogue_app = typer.Typer(help="The drug catalogue (danh mục thuốc).", no_args_is_help=True)

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]
SourceOption = Annotated[
    str,
    typer.Option(
        "--source", help="Whose list: e.g. byt (the Ministry) or a facility code (lower case)"
    ),
]


def _repository(db: str | None) -> tuple[SqlStore, GuardedRepository]:
    from sokhoe.access.guard import platform_repository
    from sokhoe.config import Settings

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = settings.open_store()
    return store, platform_repository(store, settings.fhir_base, name="sokhoe-catalogue")


@catalogue_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="The list: .csv (UTF-8) or .xlsx", exists=True)],
    source: SourceOption = "byt",
    db: DbOption = None,
) -> None:
    """Load a list as a new version of SOURCE's catalogue (all rows or nothing)."""
    from tqdm import tqdm

    from sokhoe.errors import InvalidRequest
    from sokhoe.prescribing.catalogue import REFERENCE_SOURCE
    from sokhoe.prescribing.catalogue_file import CatalogueFileError, read_catalogue
    from sokhoe.prescribing.catalogue_store import check_source, import_catalogue

    try:
        check_source(source)
    except InvalidRequest as exc:
        raise typer.BadParameter(str(exc), param_hint="--source") from exc
    if source == REFERENCE_SOURCE:
        raise typer.BadParameter(
            f"'{REFERENCE_SOURCE}' is the reference list shipped with the platform",
            param_hint="--source",
        )
    try:
        with tqdm(unit=" rows", desc=f"checking {file.name}", disable=None) as bar:
            entries = read_catalogue(file, progress=bar.update)
    except CatalogueFileError as exc:
        typer.echo(f"error: {exc}\nNothing was imported.", err=True)
        raise typer.Exit(1) from exc
    store, repo = _repository(db)
    try:
        with tqdm(total=len(entries), unit=" medicines", desc="storing", disable=None) as bar:
            report = import_catalogue(repo, source, entries, label=file.name, progress=bar.update)
    finally:
        store.close()
    if report.new_version:
        typer.echo(
            f"catalogue {source} version {report.version}: {report.created} new, "
            f"{report.changed} changed, {report.retired} withdrawn, {report.unchanged} unchanged"
        )
    else:
        typer.echo(f"catalogue {source} unchanged (version {report.version}): no new version")


@catalogue_app.command("list")
def list_command(
    source: Annotated[str | None, typer.Option(help="Only this source's medicines")] = None,
    db: DbOption = None,
) -> None:
    """The current medicines: code, N/H/C type, name, unit, ATC."""
    from sokhoe.prescribing.catalogue_store import current_entries

    store, repo = _repository(db)
    try:
        entries = current_entries(repo, source)
    finally:
        store.close()
    for e in entries:
        typer.echo(f"{e.code}\t{e.prescription_type}\t{e.name}\t{e.unit}\t{e.atc}")


@catalogue_app.command("show")
def show_command(
    code: Annotated[str, typer.Argument(help="The medicine's catalogue code (column ma)")],
    source: SourceOption = "sokhoe",
    version: Annotated[int | None, typer.Option(help="As in this catalogue version")] = None,
    db: DbOption = None,
) -> None:
    """One medicine as FHIR Medication JSON (current, or as of --version)."""
    import json

    from sokhoe.prescribing.catalogue_store import entry_at

    store, repo = _repository(db)
    try:
        found = entry_at(repo, source, code, version)
    finally:
        store.close()
    if found is None:
        typer.echo(f"error: no medicine {code} in catalogue {source}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(found, ensure_ascii=False, indent=2))
