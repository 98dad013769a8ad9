"""The warehouse views on Apache Spark: NDJSON in, one de-identified Parquet dataset per view.

The DuckDB build (:mod:`sokhoe.warehouse.build`) runs the views in one process over the
record's store; a national warehouse reads Bulk Data ``$export`` NDJSON from every province
instead, which is what this runner is for. It runs the **same** code on the executors, not a
re-implementation in Spark SQL: :func:`~sokhoe.warehouse.build.deidentified_rows` (the SQL on
FHIR engine, the keyed pseudonyms and the statistics-office area codes), and turns the rows into
Arrow record batches with the same schema the build writes (:func:`~sokhoe.warehouse.output.
arrow_schema`), so a Spark dataset and a DuckDB table built with the same key hold the same rows.

How it runs:

1. ``spark.read.text`` reads the NDJSON files line by line (each file is split across tasks);
   the JVM reads each line's ``resourceType`` (``get_json_object``), so each view only sees
   its own resources and no line is parsed in Python for a view it does not belong to;
2. per view, ``mapInArrow`` hands each task's lines, as Arrow batches, to
   :func:`_view_batches`, which parses the JSON (orjson), runs the view and yields Arrow
   batches typed by the view's columns;
3. each view is written as a Parquet dataset ``OUT/<table>/`` (``part-*.parquet`` files), with
   the columns of the build's Parquet file (no hidden ``_rid``).

The views travel to the executors as their JSON and are parsed there once per task, and the
pseudonymisation key travels inside the task closure: run it on a cluster you trust with the
key (as you would the record itself).

On a cluster the executors need this package and its dependencies (orjson, pyarrow, fhirpathpy,
duckdb…) in their Python: ``pip install sokhoe-*.whl`` on the nodes, or pack a virtualenv
(``venv-pack -o env.tar.gz``) and submit with ``--archives env.tar.gz#env`` and
``PYSPARK_PYTHON=./env/bin/python``. Then either ``sokhoe warehouse spark --master
spark://host:7077 …`` from a machine that can reach the cluster, or ``spark-submit --master
spark://host:7077 … $(which sokhoe) warehouse spark --input hdfs:///… --out hdfs:///…``
(without ``--master`` the command uses spark-submit's).

See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/
See: https://spark.apache.org/docs/latest/api/python/reference/pyspark.sql/api/pyspark.sql.DataFrame.mapInArrow.html
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]

from sokhoe.errors import InvalidRequest
from sokhoe.warehouse.build import (
    ROW_KEY,
    Pseudonymiser,
    area_columns,
    deidentified_rows,
    table,
)
from sokhoe.warehouse.output import arrow_schema
from sokhoe.warehouse.viewdef import ViewDefinition, parse_view

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "BATCH_ROWS",
    "SparkRun",
    "output_schema",
    "run_views_spark",
    "spark_schema",
    "start_spark",
    "warehouse_view_json",
]

#: Rows per Arrow batch handed back to Spark (bounds an executor's memory per task).
BATCH_ROWS = 5000


def warehouse_view_json() -> list[dict[str, Any]]:
    """The packaged warehouse ViewDefinitions as JSON, in the build's order (by file name)."""
    folder = resources.files("sokhoe.warehouse") / "views"
    found = sorted((p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)
    return [orjson.loads(p.read_bytes()) for p in found]


def output_schema(view: ViewDefinition) -> pa.Schema:
    """The Arrow schema of a view's rows in the warehouse: its columns typed as
    :func:`~sokhoe.warehouse.output.arrow_schema` types them, then the area codes (patient
    and facility tables) as strings; the same schema the DuckDB build inserts with."""
    schema = arrow_schema(view.columns)
    for name in area_columns(view):
        schema = schema.append(pa.field(name, pa.string()))
    return schema


def spark_schema(view: ViewDefinition) -> StructType:
    """The Spark schema of a view's dataset, derived from :func:`output_schema` (boolean →
    BooleanType, integers → LongType, decimal → DoubleType, others → StringType, a
    ``collection`` column → ArrayType)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(output_schema(view))


def _view_batches(
    view_json: bytes, key: bytes
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function of one view: batches of NDJSON lines in, rows out.

    Only plain values are captured (the view's JSON and the key), so the closure pickles
    without the driver's parsed objects; the view is parsed once per task.
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        view = parse_view(orjson.loads(view_json))
        schema = output_schema(view)
        pseudonym = Pseudonymiser(key)
        resources = (
            orjson.loads(line)
            for batch in batches
            for line in batch.column("value").to_pylist()
            if line and line.strip()
        )
        chunk: list[dict[str, Any]] = []
        for row in deidentified_rows(view, resources, pseudonym):
            del row[ROW_KEY]  # internal to the DuckDB refresh; not in the published Parquet
            chunk.append(row)
            if len(chunk) == BATCH_ROWS:
                yield pa.RecordBatch.from_pylist(chunk, schema=schema)
                chunk = []
        if chunk:
            yield pa.RecordBatch.from_pylist(chunk, schema=schema)

    return run


def _view_failure(view: ViewDefinition, error: Exception) -> InvalidRequest:
    """The engine's own message from an executor's traceback (its last line), as the error
    the in-process runner would have raised."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    found = [line for line in lines if "InvalidRequest" in line or "FhirPathError" in line]
    detail = (found or lines or [type(error).__name__])[-1]
    detail = detail.split(": ", 1)[-1] if ": " in detail else detail
    return InvalidRequest(
        f"view {table(view)!r} failed on Spark: {detail}", "ViewDefinition", code="processing"
    )


@contextmanager
def _quiet_pandas_check() -> Iterator[None]:
    """PySpark 4.3 warns that it is not certified with pandas 3 whenever it checks for pandas;
    the runner exchanges Arrow batches and uses no pandas, so the warning says nothing here."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield


@dataclass(frozen=True)
class SparkRun:
    """What :func:`run_views_spark` wrote: rows per table and where."""

    out_dir: str
    rows: Mapping[str, int]


def run_views_spark(
    spark: SparkSession,
    views: Sequence[Mapping[str, Any]],
    ndjson_paths: Sequence[Path | str],
    out_dir: Path | str,
    key: bytes,
) -> SparkRun:
    """Run ``views`` (ViewDefinitions as JSON) over NDJSON files with Spark; write one Parquet
    dataset per view under ``out_dir`` (``out_dir/<view name>/``, replaced if present).

    Paths may be local or any URL Spark reads and writes (``hdfs://``, ``s3a://``…); a folder
    of ``ndjson_paths`` means every file in it.

    Every view is validated on the driver before any data is read (InvalidRequest names the
    faulty element), and must have a ``name`` (its table). Rows are de-identified with ``key``
    exactly as the DuckDB build does, so both give the same pseudonyms. A resource a view
    cannot be applied to fails the job with the engine's message.
    """
    from pyspark.sql import functions as F

    parsed = [parse_view(v) for v in views]
    for i, view in enumerate(parsed):
        if not view.name:
            raise InvalidRequest("a Spark view needs a name (its table)", f"views[{i}].name")
    tables = [table(v) for v in parsed]
    twice = sorted({name for name in tables if tables.count(name) > 1})
    if twice:
        raise InvalidRequest(f"two views would write table {twice[0]!r}", "views")
    paths = [str(p) for p in ndjson_paths]
    if not paths:
        raise InvalidRequest("no NDJSON input given")
    out = str(out_dir).rstrip("/")
    lines: DataFrame = spark.read.text(paths).select(
        F.get_json_object("value", "$.resourceType").alias("resource_type"), "value"
    )
    lines = lines.persist()
    counts: dict[str, int] = {}
    try:
        with _quiet_pandas_check():
            for view_json, view in zip(views, parsed, strict=True):
                counts[table(view)] = _write_view(
                    spark, lines, view_json, view, f"{out}/{table(view)}", key
                )
    finally:
        lines.unpersist()
    return SparkRun(out, counts)


def _write_view(
    spark: SparkSession,
    lines: DataFrame,
    view_json: Mapping[str, Any],
    view: ViewDefinition,
    target: str,
    key: bytes,
) -> int:
    """Run one view over its resources' lines into the Parquet dataset ``target``; its rows."""
    from pyspark.errors import PythonException
    from pyspark.sql import functions as F

    rows = lines.where(F.col("resource_type") == view.resource).select("value")
    frame = rows.mapInArrow(_view_batches(orjson.dumps(view_json), key), spark_schema(view))
    try:
        frame.write.mode("overwrite").parquet(target)
    except PythonException as e:
        raise _view_failure(view, e) from e
    return int(spark.read.parquet(target).count())


def start_spark(master: str | None = None, app_name: str = "sokhoe-warehouse") -> SparkSession:
    """A Spark session for the runner.

    ``master`` is ``local[N]``, ``spark://host:7077``, ``yarn`` or ``k8s://…``. When it is not
    given, the master ``spark-submit`` was started with is used, and ``local[2]`` outside
    ``spark-submit``. Local mode binds to 127.0.0.1 and starts no web UI, so a laptop run
    opens no port to the network, and its workers run this Python interpreter.
    """
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    submitted = SparkConf().get("spark.master")  # set by spark-submit, None otherwise
    chosen = master or submitted or "local[2]"
    builder = SparkSession.builder.appName(app_name)
    if master or not submitted:
        builder = builder.master(chosen)
    if chosen.startswith("local"):
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
        )
        # PySpark reads the variable when the context starts; a value set by the user wins.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with _quiet_pandas_check():
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
