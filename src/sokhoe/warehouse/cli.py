"""``sokhoe view`` and ``sokhoe warehouse`` commands (registered by ``sokhoe.cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from sokhoe.errors import FhirError

view_app = typer.Typer(help="SQL on FHIR v2 ViewDefinitions.", no_args_is_help=True)
warehouse_app = typer.Typer(help="The de-identified warehouse.", no_args_is_help=True)


@view_app.command("run")
def view_run(
    view_file: Annotated[
        Path, typer.Argument(metavar="VIEW.json", help="A SQL on FHIR v2 ViewDefinition (JSON)")
    ],
    inputs: Annotated[
        list[Path],
        typer.Option(
            "--input",
            "-i",
            help="NDJSON file of resources (repeat for several); a folder means its "
            "<resource>*.ndjson files",
        ),
    ],
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="csv, json (NDJSON) or parquet")
    ] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (stdout if not given)")
    ] = None,
) -> None:
    """Run one ViewDefinition over NDJSON files, streaming them line by line.

    Exit 2: bad view, options or paths (nothing read). Exit 1: bad data (no partial --out).
    """
    from sokhoe.errors import FhirError
    from sokhoe.warehouse.viewdef import ViewDefinition
    from sokhoe.warehouse.viewdef_input import input_files

    if output_format not in ("csv", "json", "parquet"):
        _fail(f"--format must be csv, json or parquet, not {output_format!r}", 2)
    if output_format == "parquet" and out is None:
        _fail("--format parquet needs --out FILE (Parquet cannot be streamed to stdout)", 2)
    try:
        text = view_file.read_bytes()
    except OSError as e:
        _fail(f"cannot read {view_file}: {e.strerror}", 2)
    try:
        view = ViewDefinition.parse(_json_object(text, view_file))
        files = input_files(inputs, view.resource)
    except FhirError as e:
        _fail(_describe(e), 2)
    try:
        count = _write_view(view, files, output_format, out)
    except FhirError as e:
        _fail(_describe(e), 1)
    if out is not None:
        typer.echo(f"{count} rows written to {out}", err=True)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _describe(error: FhirError) -> str:
    issue = error.issues[0] if error.issues else None
    where = f" (at {issue.expression})" if issue and issue.expression else ""
    return f"{error}{where}"


def _json_object(text: bytes, path: Path) -> Any:
    import orjson

    from sokhoe.errors import InvalidRequest

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"{path} is not valid JSON ({e})") from e


def _write_view(view: Any, files: list[Path], output_format: str, out: Path | None) -> int:
    """Stream the rows into the chosen format; an --out file appears only when complete."""
    import os
    import sys
    import tempfile

    from sokhoe.warehouse import output
    from sokhoe.warehouse.viewdef import run_view
    from sokhoe.warehouse.viewdef_input import read_ndjson

    rows = run_view(view, read_ndjson(files))
    if out is None:
        if output_format == "csv":
            return output.write_csv(rows, view.columns, sys.stdout)
        sys.stdout.flush()
        return output.write_ndjson(rows, view.columns, sys.stdout.buffer)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or Path("."))
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        if output_format == "parquet":
            count = output.write_parquet(rows, view.columns, tmp)
        elif output_format == "csv":
            with tmp.open("w", encoding="utf-8", newline="") as text_out:
                count = output.write_csv(rows, view.columns, text_out)
        else:
            with tmp.open("wb") as binary_out:
                count = output.write_ndjson(rows, view.columns, binary_out)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return count


@warehouse_app.command("backtest")
def backtest(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data")] = 2026,
    years: Annotated[int, typer.Option(help="Years of weekly counts to simulate")] = 8,
    areas: Annotated[int, typer.Option(help="Number of areas to simulate")] = 10,
    out: Annotated[str | None, typer.Option(help="Write the JSON summary to this file")] = None,
) -> None:
    """Back-test outbreak detectors and forecasts on synthetic dengue counts."""
    import json
    from pathlib import Path

    from sokhoe.errors import FhirError
    from sokhoe.warehouse.backtest import SyntheticConfig, format_result, run_backtest

    try:
        result = run_backtest(SyntheticConfig(seed=seed, years=years, areas=areas), progress=True)
    except FhirError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(format_result(result))
    if out:
        Path(out).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


@warehouse_app.command("build")
def warehouse_build(
    db: Annotated[str | None, typer.Option("--db", help="Database URL of the record")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Warehouse folder (default: var/warehouse)")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild from scratch")] = False,
    population: Annotated[
        Path | None, typer.Option(help="Denominator CSV: province_code,commune_code,population")
    ] = None,
    prices: Annotated[Path | None, typer.Option(help="Test price list CSV: test,vnd")] = None,
) -> None:
    """Run the warehouse views over the record into DuckDB and Parquet, de-identified;
    incremental after the first run (only what changed since the last build)."""
    from tqdm import tqdm

    from sokhoe.config import Settings
    from sokhoe.warehouse.build import Warehouse, warehouse_key

    settings = Settings(database_url=db) if db else Settings()
    folder = out or settings.warehouse_dir
    store = settings.open_store()
    try:
        warehouse = Warehouse(folder, warehouse_key(settings.var_dir, settings.warehouse_key))
        with tqdm(unit=" resources", disable=None) as bar:
            report = warehouse.build(
                store,
                full=full,
                population=population or settings.warehouse_population,
                prices=prices,
                progress=bar.update,
            )
    finally:
        store.close()
    kind = "full build" if report.full else "incremental refresh"
    rows = sum(report.rows.values())
    typer.echo(
        f"{kind}: {report.resources} resources -> {rows} rows in {report.seconds:.1f} s "
        f"({report.rows_per_second:,.0f} rows/s) into {warehouse.path}"
    )
    for name, count in sorted(report.rows.items()):
        typer.echo(f"  {name}: {count}")


@warehouse_app.command("indicator")
def warehouse_indicator(
    name: Annotated[str, typer.Argument(help="Indicator name (omit to list them)")] = "",
    out: Annotated[Path | None, typer.Option(help="Warehouse folder")] = None,
    province: Annotated[str | None, typer.Option(help="Province statistics-office code")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First month, YYYY-MM")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last month, YYYY-MM")] = None,
) -> None:
    """Print one indicator as CSV (small cells suppressed), or list the indicators."""
    import sys

    from sokhoe.config import Settings
    from sokhoe.errors import FhirError
    from sokhoe.warehouse import indicators as ind
    from sokhoe.warehouse.publish import write_csv

    if not name:
        for item in ind.INDICATORS:
            typer.echo(f"{item.name:24} {item.family:13} {item.title}")
        return
    try:
        with ind.open_warehouse(out or Settings().warehouse_dir) as con:
            result = ind.run(con, ind.indicator(name), province=province, start=start, end=end)
    except FhirError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    write_csv(result, sys.stdout)


@warehouse_app.command("spark")
def warehouse_spark(
    inputs: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            help="NDJSON file (.ndjson or .ndjson.gz), or a folder of them, e.g. a Bulk Data "
            "$export; local, or a URL Spark reads (hdfs://, s3a://...); repeat for several",
        ),
    ],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Folder (or hdfs://, s3a://... URL) for the datasets")
    ],
    master: Annotated[
        str | None,
        typer.Option(
            help="Spark master: local[N], spark://host:7077, yarn, k8s://... "
            "(default: spark-submit's, else local[2])"
        ),
    ] = None,
) -> None:
    """Run the warehouse views on Apache Spark over NDJSON: one de-identified Parquet dataset
    per view under --out, the same rows and pseudonyms as `sokhoe warehouse build` (same key).

    Exit 2: no input files. Exit 1: a view could not be applied to the data.
    """
    import time

    from pyspark.sql import SparkSession

    from sokhoe.config import Settings
    from sokhoe.errors import FhirError
    from sokhoe.warehouse.build import warehouse_key
    from sokhoe.warehouse.runners.spark import run_views_spark, start_spark, warehouse_view_json

    files: list[str | Path] = []
    for text in inputs:
        item = Path(text)
        if "://" in text:
            files.append(text)  # read by Spark itself, wherever it is
        elif item.is_dir():
            files += sorted(p for p in item.iterdir() if p.name.endswith((".ndjson", ".ndjson.gz")))
        elif item.is_file():
            files.append(item)
        else:
            _fail(f"no such file or folder: {text}", 2)
    if not files:
        _fail("no NDJSON files in the given --input", 2)
    settings = Settings()
    key = warehouse_key(settings.var_dir, settings.warehouse_key)
    started = time.perf_counter()
    # In a running session (pyspark shell, notebook, spark-submit) use it and leave it open.
    ours = SparkSession.getActiveSession() is None
    spark = start_spark(master)
    try:
        result = run_views_spark(spark, warehouse_view_json(), files, out, key)
    except FhirError as e:
        _fail(_describe(e), 1)
    finally:
        if ours:
            spark.stop()
    total = sum(result.rows.values())
    seconds = time.perf_counter() - started
    typer.echo(f"{total} rows from {len(files)} files in {seconds:.1f} s into {out}")
    for name, count in sorted(result.rows.items()):
        typer.echo(f"  {name}: {count}")
