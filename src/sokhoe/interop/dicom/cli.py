"""``sokhoe pacs`` commands (registered by ``sokhoe.cli``)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Annotated

import typer

pacs_app = typer.Typer(help="DICOM imaging from an Orthanc PACS.", no_args_is_help=True)


@pacs_app.callback()
def _group() -> None:
    """DICOM imaging from an Orthanc PACS (a group even with one command: ``pacs watch``)."""


@pacs_app.command()
def watch(
    orthanc: Annotated[str, typer.Option(help="Orthanc REST root, e.g. http://pacs:8042")],
    facility: Annotated[str, typer.Option(help="The facility code (MA_CSKCB) owning the PACS")],
    user: Annotated[str | None, typer.Option(help="Orthanc user")] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="SOKHOE_PACS_PASSWORD", help="Orthanc password (or the env var)"),
    ] = None,
    dicomweb: Annotated[
        str | None,
        typer.Option(help="DICOMweb root viewers use (default: ORTHANC/dicom-web)"),
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls")] = 10.0,
    once: Annotated[bool, typer.Option("--once", help="Poll once, print the report, exit")] = False,
) -> None:
    """Put every stable study of the PACS in its patient's record as an ImagingStudy."""
    from sokhoe.config import Settings
    from sokhoe.interop.dicom.orthanc import OrthancClient, OrthancError
    from sokhoe.interop.dicom.watch import PacsWatcher

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = settings.open_store()
    client = OrthancClient(orthanc, user, password)
    try:
        try:
            watcher = PacsWatcher(
                store,
                client,
                facility,
                base_url=settings.fhir_base,
                dicomweb_url=dicomweb,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--facility") from exc
        if once:
            try:
                report = watcher.run_once()
            except OrthancError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(1) from exc
            typer.echo(json.dumps(asdict(report)))
            return
        try:
            watcher.run(interval)
        except KeyboardInterrupt:
            pass
    finally:
        client.close()
        store.close()
