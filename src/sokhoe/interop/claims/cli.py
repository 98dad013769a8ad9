"""``sokhoe claims`` commands (registered by ``sokhoe.cli``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

claims_app = typer.Typer(help="Health-insurance appraisal XML.", no_args_is_help=True)


@claims_app.command("export")
def export_command(
    facility: Annotated[str, typer.Option(help="Insurance facility code (mã CSKCB, 5 chars)")],
    day: Annotated[str, typer.Option("--date", help="Local date of the visits, YYYY-MM-DD")],
    out: Annotated[Path, typer.Option(help="Output folder (files go to OUT/CODE/DATE/)")],
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (default: SOKHOE_DATABASE_URL)")
    ] = None,
    cert: Annotated[Path | None, typer.Option(help="Facility certificate (PEM)")] = None,
    key: Annotated[Path | None, typer.Option(help="Private key of the certificate (PEM)")] = None,
    prices: Annotated[
        Path | None, typer.Option("--catalogue", help="Price list CSV (default: demo prices)")
    ] = None,
    window: Annotated[int, typer.Option(help="Days for the repeated-test check")] = 7,
) -> None:
    """Export a facility-day of encounters as signed XML (QĐ 130/4750/3176/1931)."""
    from tqdm import tqdm

    from sokhoe.config import Settings
    from sokhoe.errors import NotFound
    from sokhoe.interop.claims.catalogue import demo_catalogue, load_catalogue
    from sokhoe.interop.claims.export import ExportOptions, export_day, export_repository
    from sokhoe.interop.claims.signing import facility_key, load_key
    from sokhoe.mpi.identifiers import validate_facility_code

    try:
        code = validate_facility_code(facility)
        when = date.fromisoformat(day)
        catalogue = load_catalogue(prices) if prices else demo_catalogue()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if (cert is None) != (key is None):
        raise typer.BadParameter("give both --cert and --key, or neither")
    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = settings.open_store()
    try:
        repo = export_repository(store, settings.fhir_base)
        if cert is not None and key is not None:
            signing = load_key(cert, key)
        else:
            try:
                from sokhoe.interop.claims.sources import find_facility

                name = find_facility(repo, code).name
            except NotFound as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
            signing = facility_key(settings.var_dir, code, name)
            state = "generated" if signing.generated else "using"
            typer.echo(
                f"{state} a self-signed DEVELOPMENT certificate {signing.cert_path} "
                "(not registered with the portal; pass --cert/--key in production)"
            )
        options = ExportOptions(code, when, out, signing, catalogue, timedelta(days=window))
        with tqdm(unit=" encounters", desc=f"{code} {when}", disable=None) as bar:
            try:
                report = export_day(repo, options, progress=bar.update, on_total=bar.reset)
            except NotFound as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
    finally:
        store.close()
    summary = report.as_json()["summary"]
    for problem in report.problems:
        typer.echo(str(problem), err=problem.severity == "error")
    typer.echo(
        f"written: {summary['written']}, withheld: {summary['withheld']}, "
        f"warnings: {summary['warnings']}; total {summary['T_TONGCHI_BV']} đồng, insurance "
        f"{summary['T_BHTT']} đồng; report: {report.folder / 'report.json'}"
    )
    if report.withheld:
        raise typer.Exit(1)
