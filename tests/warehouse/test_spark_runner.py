"""The warehouse views on Apache Spark (local mode) give the DuckDB build's rows, pseudonyms and
column types; bad views are refused before any data is read; data errors name the view."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from typer.testing import CliRunner

from sokhoe.access.guard import platform_repository
from sokhoe.cli import app
from sokhoe.demo import write_demo
from sokhoe.errors import InvalidRequest
from sokhoe.interop.load import load_paths
from sokhoe.store.sql import SqlStore
from sokhoe.warehouse.build import ROW_KEY, Pseudonymiser, Warehouse, table, views
from sokhoe.warehouse.runners.spark import (
    output_schema,
    run_views_spark,
    spark_schema,
    start_spark,
    warehouse_view_json,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.filterwarnings(
        # PySpark 4.3 warns on import that it has not been certified with pandas 3; we use Arrow.
        "ignore:PySpark does not yet fully support pandas:FutureWarning"
    ),
    pytest.mark.xdist_group("spark"),  # one worker starts Spark, once
]

KEY = b"spark-test-key"


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    started = time.perf_counter()
    session = start_spark("local[2]", app_name="sokhoe-tests")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    session.sparkContext.setLogLevel("FATAL")  # the failing-view test's task errors are expected
    print(f"Spark started in {time.perf_counter() - started:.1f} s")  # noqa: T201 (-s shows it)
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-demo") / "ndjson"
    write_demo(out, 50, 23, "ndjson", progress=False)
    _dispenses(out)
    return out


def _dispenses(folder: Path) -> None:
    """Dispenses of the demo's first prescriptions (the demo has none: the dispense view needs
    rows to compare)."""
    requests = (folder / "MedicationRequest.ndjson").read_bytes().splitlines()[:3]
    with (folder / "MedicationDispense.ndjson").open("wb") as out:
        for n, line in enumerate(requests):
            request = orjson.loads(line)
            dispense = {
                "resourceType": "MedicationDispense",
                "id": f"dispense-{n}",
                "status": "completed",
                "subject": request["subject"],
                "medicationCodeableConcept": request["medicationCodeableConcept"],
                "authorizingPrescription": [{"reference": f"MedicationRequest/{request['id']}"}],
                "quantity": {"value": 10 + n, "unit": "viên"},
                "whenHandedOver": request["authoredOn"],
                "substitution": {"wasSubstituted": False},
            }
            out.write(orjson.dumps(dispense) + b"\n")


@pytest.fixture(scope="module")
def built(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DuckDB build over the same demo, loaded into a SQLite store, with the same key."""
    folder = tmp_path_factory.mktemp("duck")
    store = SqlStore(f"sqlite:///{folder / 'record.db'}")
    try:
        # the dispenses added to the demo are server-owned (written by $dispense)
        repo = platform_repository(store, "http://test/fhir", owns=frozenset({"dispensing"}))
        report = load_paths(repo, [demo], workers=0)
        assert report.errors == []
        Warehouse(folder / "wh", KEY).build(store, full=True)
    finally:
        store.close()
    return folder / "wh"


@pytest.fixture(scope="module")
def spark_out(spark: SparkSession, demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-out")
    files = sorted(demo.glob("*.ndjson"))
    result = run_views_spark(spark, warehouse_view_json(), files, out, KEY)
    assert set(result.rows) == {table(v) for v in views()}
    return out


def _duck_rows(folder: Path, name: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute(f'SELECT * EXCLUDE ("{ROW_KEY}") FROM "{name}"').fetchall()  # noqa: S608
    return sorted(found, key=repr)


def _spark_rows(folder: Path, name: str) -> list[tuple[Any, ...]]:
    data = pq.read_table(folder / name)
    return sorted((tuple(r.values()) for r in data.to_pylist()), key=repr)


@pytest.mark.parametrize("name", sorted(table(v) for v in views()))
def test_each_view_gives_the_duckdb_build_rows(name: str, built: Path, spark_out: Path) -> None:
    expected = _duck_rows(built, name)
    got = _spark_rows(spark_out, name)
    assert expected, name  # the demo has rows for every view
    assert got == expected


def test_pseudonyms_are_the_builds_and_keyed(spark_out: Path, demo: Path) -> None:
    ids = [orjson.loads(line)["id"] for line in (demo / "Patient.ndjson").read_bytes().splitlines()]
    keys = {r["patient_key"] for r in pq.read_table(spark_out / "patient").to_pylist()}
    assert keys == {Pseudonymiser(KEY)(i) for i in ids}
    assert not keys & set(ids)
    assert not keys & {Pseudonymiser(b"another key")(i) for i in ids}


def test_datasets_are_typed_by_the_views_column_types(spark_out: Path) -> None:
    for view in views():
        written = pq.read_schema(next((spark_out / table(view)).glob("*.parquet")))
        expected = output_schema(view)
        assert written.names == expected.names
        assert [f.type for f in written] == [f.type for f in expected], table(view)
    observation = {f.name: f.type for f in output_schema(_view("observation"))}
    assert observation["value"] == pa.float64()
    assert observation["status"] == pa.string()
    patient = {f.name: f.dataType.simpleString() for f in spark_schema(_view("patient")).fields}
    assert patient["deceased"] == "boolean"
    assert patient["province_code"] == "string"
    dose = {f.name: f.dataType.simpleString() for f in spark_schema(_view("immunization")).fields}
    assert dose["dose"] == "bigint"


def _view(name: str) -> Any:
    return next(v for v in views() if table(v) == name)


def test_a_bad_view_is_refused_before_any_data_is_read(
    spark: SparkSession, demo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    unnamed = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]}
    with pytest.raises(InvalidRequest, match="needs a name"):
        run_views_spark(spark, [unnamed], [demo / "Patient.ndjson"], out, KEY)
    broken = {**unnamed, "name": "p", "select": [{"column": [{"name": "g", "path": "name.("}]}]}
    with pytest.raises(InvalidRequest, match="syntax error"):
        run_views_spark(spark, [broken], [demo / "Patient.ndjson"], out, KEY)
    assert not out.exists()


def test_a_view_that_does_not_fit_the_data_names_the_view_and_the_cause(
    spark: SparkSession, demo: Path, tmp_path: Path
) -> None:
    # Every demo person has a family and a given name: two values in a single-valued column.
    view = {
        "name": "names",
        "resource": "Patient",
        "select": [{"column": [{"name": "k", "path": "getResourceKey()"},
                               {"name": "part", "path": "name.given | name.family"}]}],
    }  # fmt: skip
    with pytest.raises(InvalidRequest, match=r"view 'names' failed on Spark: .*collection: true"):
        run_views_spark(spark, [view], [demo / "Patient.ndjson"], tmp_path / "out", KEY)


def test_the_cli_runs_in_the_active_session(
    spark: SparkSession,
    demo: Path,
    spark_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOKHOE_WAREHOUSE_KEY", KEY.decode())
    monkeypatch.setenv("SOKHOE_VAR_DIR", str(tmp_path / "var"))
    out = tmp_path / "cli"
    # a folder in, a URL out (as hdfs:// or s3a:// would be on a cluster); the folder holds
    # the demo's people and observations (every view over every file is compared above)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("Patient.ndjson", "Observation.ndjson"):
        shutil.copyfile(demo / name, folder / name)
    command = ["warehouse", "spark", "--input", str(folder), "--out", out.as_uri()]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "patient: 50" in result.output
    assert _spark_rows(out, "observation") == _spark_rows(spark_out, "observation")
    # the session the command found is still usable: the command leaves it to its owner
    assert spark.range(3).count() == 3


def test_the_cli_refuses_missing_input_before_starting_spark(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["warehouse", "spark", "--input", str(tmp_path / "none"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "no such file or folder" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(
        app, ["warehouse", "spark", "--input", str(empty), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "no NDJSON files" in result.output
