"""``sokhoe view run`` over the Synthea bulk export: csv, json (NDJSON) and parquet, and errors.

Expected values are computed here straight from the NDJSON with ``json``, not with the engine.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from typer.testing import CliRunner

from sokhoe.cli import app
from tests.conftest import SHARED_DATA

BULK = SHARED_DATA / "synthea-bulk-10"
PATIENTS = BULK / "Patient.000.ndjson"

PATIENT_NAMES_VIEW: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "name": "patient_names",
    "status": "active",
    "resource": "Patient",
    "select": [
        {
            "column": [
                {"name": "id", "path": "getResourceKey()", "type": "id"},
                {"name": "gender", "path": "gender", "type": "code"},
                {"name": "birth_date", "path": "birthDate", "type": "date"},
                {"name": "deceased", "path": "deceased.exists()", "type": "boolean"},
                # No Synthea patient has multipleBirthInteger: an all-null integer column.
                {
                    "name": "birth_order",
                    "path": "multipleBirth.ofType(integer)",
                    "type": "integer",
                },
            ]
        },
        {
            "forEach": "name",
            "column": [
                {"name": "name_index", "path": "%rowIndex", "type": "integer"},
                {"name": "family", "path": "family", "type": "string"},
                {"name": "given", "path": "given", "type": "string", "collection": True},
            ],
        },
    ],
}
COLUMNS = ["id", "gender", "birth_date", "deceased", "birth_order", "name_index", "family", "given"]


def _patients() -> list[dict[str, Any]]:
    with PATIENTS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _expected_rows() -> list[dict[str, Any]]:
    rows = []
    for p in _patients():
        for i, name in enumerate(p.get("name", [])):
            rows.append(
                {
                    "id": p["id"],
                    "gender": p.get("gender"),
                    "birth_date": p.get("birthDate"),
                    "deceased": "deceasedDateTime" in p or "deceasedBoolean" in p,
                    "birth_order": p.get("multipleBirthInteger"),
                    "name_index": i,
                    "family": name.get("family"),
                    "given": name.get("given", []),
                }
            )
    return rows


@pytest.fixture
def view_file(tmp_path: Path) -> Path:
    path = tmp_path / "patient_names.json"
    path.write_text(json.dumps(PATIENT_NAMES_VIEW), encoding="utf-8")
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["view", "run", *args])


def test_csv_to_stdout_has_a_header_in_column_order(view_file: Path) -> None:
    result = _run(str(view_file), "--input", str(PATIENTS), "--format", "csv")

    assert result.exit_code == 0, result.output
    reader = csv.reader(io.StringIO(result.stdout))
    header, *lines = list(reader)
    assert header == COLUMNS
    expected = _expected_rows()
    assert len(expected) > len(_patients())  # some patients have two names: forEach unnests
    as_csv = [
        [
            r["id"],
            r["gender"],
            r["birth_date"],
            "true" if r["deceased"] else "false",
            "",
            str(r["name_index"]),
            r["family"],
            json.dumps(r["given"], separators=(",", ":"), ensure_ascii=False),
        ]
        for r in expected
    ]
    assert lines == as_csv


def test_json_is_ndjson_with_every_column(view_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "names.ndjson"
    result = _run(str(view_file), "-i", str(PATIENTS), "-f", "json", "--out", str(out))

    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(list(r) == COLUMNS for r in rows)
    assert rows == _expected_rows()
    assert f"{len(rows)} rows written" in result.stderr


def test_json_to_stdout(view_file: Path) -> None:
    result = _run(str(view_file), "-i", str(PATIENTS), "-f", "json")

    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == _expected_rows()


def test_parquet_keeps_declared_types_even_for_an_all_null_column(
    view_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "names.parquet"
    result = _run(str(view_file), "-i", str(PATIENTS), "-f", "parquet", "-o", str(out))

    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.schema.names == COLUMNS
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.string()
    assert types["deceased"] == pa.bool_()
    assert types["birth_order"] == pa.int64()
    assert types["name_index"] == pa.int64()
    assert types["given"] == pa.list_(pa.string())
    assert table.column("birth_order").null_count == table.num_rows
    assert table.to_pylist() == _expected_rows()


def test_a_folder_input_reads_only_the_views_resource_files(view_file: Path) -> None:
    by_file = _run(str(view_file), "-i", str(PATIENTS))
    by_folder = _run(str(view_file), "-i", str(BULK))
    # Other resource types in an input file are skipped, not errors.
    mixed = _run(str(view_file), "-i", str(BULK / "Device.000.ndjson"), "-i", str(PATIENTS))

    assert by_file.exit_code == by_folder.exit_code == mixed.exit_code == 0
    assert by_file.stdout == by_folder.stdout == mixed.stdout


def test_references_join_on_keys(tmp_path: Path) -> None:
    view = {
        "resource": "Encounter",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()", "type": "id"},
                    {"name": "patient", "path": "subject.getReferenceKey(Patient)", "type": "id"},
                    {"name": "start", "path": "period.start", "type": "dateTime"},
                ]
            }
        ],
        "where": [{"path": "status = 'finished'"}],
    }
    path = tmp_path / "encounters.json"
    path.write_text(json.dumps(view), encoding="utf-8")

    result = _run(str(path), "-i", str(BULK / "Encounter.000.ndjson"), "-f", "json")

    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    patient_ids = {p["id"] for p in _patients()}
    assert len(rows) > 1000
    assert {r["patient"] for r in rows} == patient_ids


def test_a_bad_view_exits_nonzero_with_the_element_and_writes_nothing(tmp_path: Path) -> None:
    view = json.loads(json.dumps(PATIENT_NAMES_VIEW))
    view["select"][1]["column"][1]["name"] = "gender"  # a duplicate column name
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(view), encoding="utf-8")
    out = tmp_path / "out.csv"

    result = _run(str(path), "-i", str(PATIENTS), "-o", str(out))

    assert result.exit_code == 2
    assert "column name 'gender' is used twice" in result.stderr
    assert "ViewDefinition.select[1].column[1]" in result.stderr
    assert not out.exists()


def test_a_view_that_is_not_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"resource": "Patient",', encoding="utf-8")

    result = _run(str(path), "-i", str(PATIENTS))

    assert result.exit_code == 2
    assert "is not valid JSON" in result.stderr


def test_a_malformed_line_is_reported_with_its_line_number(view_file: Path, tmp_path: Path) -> None:
    good = PATIENTS.read_text(encoding="utf-8").splitlines()
    data = tmp_path / "Patient.ndjson"
    data.write_text("\n".join([good[0], "", good[1], '{"resourceType": "Patient",']) + "\n")
    out = tmp_path / "out.parquet"

    result = _run(str(view_file), "-i", str(data), "-f", "parquet", "-o", str(out))

    assert result.exit_code == 1
    assert f"{data}:4: not valid JSON" in result.stderr
    assert not out.exists()  # no partial file is left behind
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_parquet_needs_an_output_file(view_file: Path) -> None:
    result = _run(str(view_file), "-i", str(PATIENTS), "-f", "parquet")

    assert result.exit_code == 2
    assert "needs --out" in result.stderr


def test_an_unknown_format_is_refused(view_file: Path) -> None:
    result = _run(str(view_file), "-i", str(PATIENTS), "-f", "xml")

    assert result.exit_code == 2
    assert "--format must be csv, json or parquet" in result.stderr


def test_a_missing_input_is_refused_before_reading(view_file: Path, tmp_path: Path) -> None:
    result = _run(str(view_file), "-i", str(tmp_path / "nope.ndjson"))

    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_a_value_that_does_not_fit_its_declared_type_stops_parquet(tmp_path: Path) -> None:
    view = {
        "resource": "Patient",
        "select": [{"column": [{"name": "gender", "path": "gender", "type": "integer"}]}],
    }
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(view), encoding="utf-8")
    out = tmp_path / "typed.parquet"

    result = _run(str(path), "-i", str(PATIENTS), "-f", "parquet", "-o", str(out))

    assert result.exit_code == 1
    assert "column 'gender' is declared integer" in result.stderr
    assert not out.exists()
