"""``sokhoe import`` commands (registered by ``sokhoe.cli``).

``sokhoe import patients FILE --mapping MAP.json [--facility CODE] [--dry-run]
[--all-or-nothing] [--report OUT.csv|OUT.json] [--db URL]`` and the same for ``visits``. The
exit code is 0 when every row was imported (or would be, in a dry run), 1 when a row failed,
2 when the file could not be imported at all (mapping, header, facility).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sokhoe.interop.legacy.importer import Job
    from sokhoe.interop.legacy.reader import Cell

import_app = typer.Typer(help="Import legacy exports (CSV, Excel).", no_args_is_help=True)

MappingOption = Annotated[
    Path, typer.Option("--mapping", help="Column-mapping file (JSON), see the samples")
]
FacilityOption = Annotated[
    str | None, typer.Option("--facility", help="Facility code (mã CSKCB) if not in the mapping")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check every row and report; write nothing")
]
AllOption = Annotated[
    bool,
    typer.Option(
        "--all-or-nothing", help="One transaction for the file: any bad row writes nothing"
    ),
]
ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Write the row-by-row report (.csv or .json); a bare name goes beside the input",
    ),
]
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
]


@import_app.command("patients")
def patients_command(
    file: Annotated[Path, typer.Argument(help="Patient list (.csv or .xlsx)")],
    mapping: MappingOption,
    facility: FacilityOption = None,
    dry_run: DryRunOption = False,
    all_or_nothing: AllOption = False,
    report: ReportOption = None,
    db: DbOption = None,
) -> None:
    """Import a patient list: find each person by record number or CCCD, else register."""
    files = [(file, mapping)]
    raise typer.Exit(_run("patients", files, facility, dry_run, all_or_nothing, report, db))


@import_app.command("visits")
def visits_command(
    file: Annotated[Path, typer.Argument(help="Visit register (.csv or .xlsx)")],
    mapping: MappingOption,
    facility: FacilityOption = None,
    dry_run: DryRunOption = False,
    all_or_nothing: AllOption = False,
    report: ReportOption = None,
    db: DbOption = None,
    patients: Annotated[
        Path | None,
        typer.Option("--patients", help="Import this patient list first (same transaction mode)"),
    ] = None,
    patients_mapping: Annotated[
        Path | None, typer.Option("--patients-mapping", help="Mapping of --patients")
    ] = None,
) -> None:
    """Import visits (Encounter + ICD-10 Conditions) of patients already registered.

    With ``--patients`` the patient list is imported first; with ``--dry-run`` both are checked
    in one rolled-back transaction, so visits of patients the list would create are found."""
    files = [(file, mapping)]
    if patients is not None:
        if patients_mapping is None:
            typer.echo("--patients needs --patients-mapping", err=True)
            raise typer.Exit(2)
        files.insert(0, (patients, patients_mapping))
    raise typer.Exit(_run("visits", files, facility, dry_run, all_or_nothing, report, db))


def _run(
    kind: str,
    files: list[tuple[Path, Path]],
    facility: str | None,
    dry_run: bool,
    all_or_nothing: bool,
    report: Path | None,
    db: str | None,
) -> int:
    from sokhoe.access.guard import platform_repository
    from sokhoe.config import Settings
    from sokhoe.errors import FhirError
    from sokhoe.interop.legacy.importer import Job, LegacyImporter
    from sokhoe.interop.legacy.mapping import load_mapping

    settings = Settings()
    try:
        jobs: list[Job] = []
        for path, map_path in files:
            loaded = load_mapping(map_path)
            jobs.append(Job(path, loaded.with_facility(facility)))
        if jobs[-1].mapping.kind != kind:
            raise typer.BadParameter(f"{files[-1][1]} is a {jobs[-1].mapping.kind} mapping")
        codes = {j.mapping.facility or "" for j in jobs}
        if len(codes) > 1:
            raise typer.BadParameter(f"The mappings name different facilities: {sorted(codes)}")
    except FhirError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    store = settings.open_store(db)
    try:
        door = platform_repository(store, settings.fhir_base, name="sokhoe-import")
        try:
            importer = LegacyImporter(
                door,
                jobs[0].mapping.facility or "",
                source=f"sokhoe import {kind}",
            )
        except FhirError as exc:
            typer.echo(f"error: {exc}", err=True)
            return 2
        reports = importer.run(
            jobs, dry_run=dry_run, all_or_nothing=all_or_nothing, progress=_progress
        )
    finally:
        store.close()
    for job, result in zip(jobs, reports, strict=True):
        typer.echo(result.summary())
        if report is not None:
            target = _report_path(report, job, last=job is jobs[-1])
            typer.echo(f"  report: {result.write(target)}")
    if any(r.fatal for r in reports):
        return 2
    return 1 if any(r.failed for r in reports) else 0


def _report_path(report: Path, job: Job, *, last: bool) -> Path:
    """A bare file name goes beside the input; the patient list of ``visits --patients`` gets
    its own report with ``-patients`` added to the name."""
    path = job.path.parent / report if report.parent == Path() else report
    if not last:
        path = path.with_name(f"{path.stem}-patients{path.suffix}")
    return path


def _progress(rows: Iterable[tuple[int, list[Cell]]]) -> Iterable[tuple[int, list[Cell]]]:
    """A progress bar on a terminal (rows are streamed, so it counts without a total)."""
    from tqdm import tqdm

    return tqdm(rows, unit=" rows", disable=None, file=sys.stderr, mininterval=0.5)
