"""The warehouse build: de-identified, keyed pseudonyms, incremental refresh equal to a full
rebuild, on the memory and SQLite stores; indicators with small-cell suppression."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from sokhoe.access.guard import platform_repository
from sokhoe.cli import app
from sokhoe.demo import write_demo
from sokhoe.interop.load import load_paths
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.sql import SqlStore
from sokhoe.warehouse import indicators as ind
from sokhoe.warehouse.build import ROW_KEY, Pseudonymiser, Warehouse, table, views
from sokhoe.warehouse.publish import SUPPRESSED_MARK, to_csv, to_xlsx

KEY = b"test-warehouse-key"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "ndjson"
    write_demo(out, 120, 11, "ndjson", progress=False)
    return out


@pytest.fixture(scope="module")
def templates(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[MemoryStore, Path]:
    """The demo loaded once into each kind of store; every test gets its own copy."""
    memory = MemoryStore()
    file = tmp_path_factory.mktemp("template") / "w.db"
    sqlite = SqlStore(f"sqlite:///{file}")
    for store in (memory, sqlite):
        report = load_paths(platform_repository(store, "http://test/fhir"), [demo_dir], workers=0)
        assert report.errors == []
    sqlite.close()  # checkpoints the write-ahead log into the file
    return memory, file


@pytest.fixture(params=["memory", "sqlite"])
def loaded(
    request: pytest.FixtureRequest, templates: tuple[MemoryStore, Path], tmp_path: Path
) -> Iterator[FhirStore]:
    memory, file = templates
    store: FhirStore
    if request.param == "memory":
        store = memory.fork()
    else:
        copy = tmp_path / "w.db"
        shutil.copyfile(file, copy)
        store = SqlStore(f"sqlite:///{copy}")
    try:
        yield store
    finally:
        store.close()


def _tables(folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as con:
        return {
            table(v): sorted(
                con.execute(f'SELECT * EXCLUDE ("{ROW_KEY}") FROM "{table(v)}"').fetchall(),  # noqa: S608
                key=repr,
            )
            for v in views()
        }


def _personal_values(demo_dir: Path) -> set[str]:
    """Names, identifiers, ids, birth dates, phone numbers and street lines of the demo people:
    none may appear in the warehouse."""
    found: set[str] = set()
    for line in (demo_dir / "Patient.ndjson").read_bytes().splitlines():
        p = orjson.loads(line)
        found.add(p["id"])
        found.update(i["value"] for i in p.get("identifier", []))
        found.update(n["text"] for n in p.get("name", []) if "text" in n)
        found.update(t["value"] for t in p.get("telecom", []))
        found.update(line for a in p.get("address", []) for line in a.get("line", []))
        if "birthDate" in p and len(p["birthDate"]) == 10:
            found.add(p["birthDate"])
    return found


def test_the_warehouse_holds_no_personal_data(
    loaded: FhirStore, demo_dir: Path, tmp_path: Path
) -> None:
    warehouse = Warehouse(tmp_path / "wh", KEY)
    report = warehouse.build(loaded)
    assert report.full and report.rows["patient"] == 120
    assert report.rows["encounter"] > 0 and report.rows["observation"] > 0
    personal = _personal_values(demo_dir)
    tables = _tables(tmp_path / "wh")
    # facilities are not people (their go-live dates may equal someone's birthday)
    cells = {str(v) for name, rows in tables.items() if name != "facility" for r in rows for v in r}
    assert not cells & personal
    facility_cells = {str(v) for r in tables["facility"] for v in r}
    assert not {v for v in facility_cells & personal if len(v) != 10}
    # the Parquet copies likewise (and carry every view)
    parquet = tmp_path / "wh" / "parquet"
    assert {p.stem for p in parquet.glob("*.parquet")} == {table(v) for v in views()}
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT * FROM read_parquet(?)", [str(parquet / "patient.parquet")]
        ).fetchall()
    assert len(rows) == 120 and not {str(v) for r in rows for v in r} & personal


def test_pseudonyms_are_keyed_stable_and_join(loaded: FhirStore, tmp_path: Path) -> None:
    a = Warehouse(tmp_path / "a", KEY)
    a.build(loaded)
    again = Warehouse(tmp_path / "again", KEY)
    again.build(loaded)
    other = Warehouse(tmp_path / "other", b"another key")
    other.build(loaded)
    assert _tables(tmp_path / "a") == _tables(tmp_path / "again")
    keys_a = {r[0] for r in _tables(tmp_path / "a")["patient"]}
    keys_other = {r[0] for r in _tables(tmp_path / "other")["patient"]}
    assert not keys_a & keys_other
    with a.connect(read_only=True) as con:
        orphans = con.execute(
            "SELECT count(*) FROM encounter e LEFT JOIN patient p USING (patient_key) "
            "WHERE p.patient_key IS NULL"
        ).fetchone()
        coded = con.execute(
            "SELECT count(*), count(province_code), count(commune_code) FROM patient"
        ).fetchone()
    assert orphans == (0,)
    assert coded == (120, 120, 120)  # every demo address resolves to statistics-office codes
    assert Pseudonymiser(KEY)("Patient/1") != Pseudonymiser(KEY)("Patient/2")


def _change(store: FhirStore) -> dict[str, str]:
    """Update one patient, delete one observation, add one condition."""
    repo = platform_repository(store, "http://test/fhir")
    with store.begin() as tx:
        patients = sorted(store.iter_all("Patient"), key=lambda r: r.id)
        observation = next(iter(store.iter_all("Observation")))
        encounter = next(iter(store.iter_all("Encounter")))
        del tx
    moved = dict(patients[0].content or {})
    moved["gender"] = "other" if moved.get("gender") != "other" else "unknown"
    repo.update(moved, "Patient", moved["id"])
    repo.delete("Observation", observation.id)
    subject = (encounter.content or {})["subject"]
    repo.create(
        {
            "resourceType": "Condition",
            "subject": subject,
            "encounter": {"reference": f"Encounter/{encounter.id}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "A90"}]},
        },
        "Condition",
    )
    return {"patient": moved["id"], "observation": observation.id}


def test_incremental_refresh_equals_a_full_rebuild(loaded: FhirStore, tmp_path: Path) -> None:
    incremental = Warehouse(tmp_path / "inc", KEY)
    incremental.build(loaded)
    before = _tables(tmp_path / "inc")
    changed = _change(loaded)
    report = incremental.build(loaded)
    assert not report.full
    assert report.resources == 3  # only what changed was read again
    assert report.rows["patient"] == 1 and report.rows["condition"] == 1
    assert report.rows["observation"] == 0  # deleted: its rows went, none came
    full = Warehouse(tmp_path / "full", KEY)
    full.build(loaded)
    after = _tables(tmp_path / "inc")
    assert after == _tables(tmp_path / "full")
    assert len(after["observation"]) == len(before["observation"]) - 1
    assert len(after["condition"]) == len(before["condition"]) + 1
    assert changed  # a second refresh with nothing new reads nothing
    assert incremental.build(loaded).resources == 0


def test_indicators_suppress_small_cells(loaded: FhirStore, tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "wh", KEY)
    warehouse.build(loaded)
    with ind.open_warehouse(tmp_path / "wh") as con:
        for indicator in ind.INDICATORS:
            result = ind.run(con, indicator)
            hidden = indicator.cube.hidden_with_row
            for row in result.rows:
                for column in indicator.people:
                    value = row[column]
                    assert value is ind.SUPPRESSED or value == 0 or value >= ind.SUPPRESS_BELOW
                if row.get("suppressed"):  # hidden, never blank or zero
                    assert all(row[c] is ind.SUPPRESSED for c in hidden if c in row)
                else:
                    assert not any(row[c] is ind.SUPPRESSED for c in indicator.people)
        chapters = ind.run(con, ind.indicator("disease_chapters"), suppress_below=1)
        assert chapters.rows and chapters.suppressed == 0
        suppressed = ind.run(con, ind.indicator("disease_chapters"))
        assert suppressed.suppressed > 0  # 120 people: most monthly cells are small
    text = to_csv(suppressed)
    assert SUPPRESSED_MARK in text and "suppressed" not in text.splitlines()[0]
    assert "SUPPRESSED" not in text
    assert to_xlsx(suppressed)[:2] == b"PK"  # an Office Open XML (zip) workbook


def test_indicator_filters_are_checked(loaded: FhirStore, tmp_path: Path) -> None:
    Warehouse(tmp_path / "wh", KEY).build(loaded)
    with ind.open_warehouse(tmp_path / "wh") as con:
        everywhere = ind.run(con, ind.indicator("ehr_coverage"), suppress_below=1)
        one = everywhere.rows[0]["province_code"]
        only = ind.run(con, ind.indicator("ehr_coverage"), province=one, suppress_below=1)
        assert [r["province_code"] for r in only.rows] == [one]
        with pytest.raises(Exception, match="month like"):
            ind.run(con, ind.indicator("disease_chapters"), start="2026/01")
        with pytest.raises(Exception, match="statistics-office code"):
            ind.run(con, ind.indicator("ehr_coverage"), province="Hà Nội")
    with pytest.raises(Exception, match="sokhoe warehouse build"):
        ind.open_warehouse(tmp_path / "nowhere")


def test_repeated_tests_and_ncd_control_from_constructed_records(tmp_path: Path) -> None:
    """Two HbA1c tests 10 days apart at two facilities; hypertension controlled or not."""
    store = MemoryStore()
    repo = platform_repository(store, "http://test/fhir")
    orgs = [
        repo.create({"resourceType": "Organization", "name": n}, "Organization").resource.id
        for n in ("A", "B")
    ]
    people = []
    for _ in range(6):
        people.append(
            repo.create(
                {
                    "resourceType": "Patient",
                    "gender": "female",
                    "birthDate": "1960-01-01",
                    "address": [
                        {
                            "use": "home",
                            "city": "Phường Bến Thành",
                            "state": "Thành phố Hồ Chí Minh",
                        }
                    ],
                },
                "Patient",
            ).resource.id
        )
    for pid in people:
        for org, day, a1c in ((orgs[0], "2026-03-01", 8.0), (orgs[1], "2026-03-11", 6.5)):
            enc = repo.create(
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"code": "AMB"},
                    "subject": {"reference": f"Patient/{pid}"},
                    "period": {"start": f"{day}T08:00:00+07:00"},
                    "serviceProvider": {"reference": f"Organization/{org}"},
                },
                "Encounter",
            ).resource.id
            repo.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [{"coding": [{"code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "encounter": {"reference": f"Encounter/{enc}"},
                    "effectiveDateTime": f"{day}T09:00:00+07:00",
                    "valueQuantity": {"value": a1c, "unit": "%", "code": "%"},
                },
                "Observation",
            )
        repo.create(
            {
                "resourceType": "Condition",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]},
            },
            "Condition",
        )
    Warehouse(tmp_path / "wh", KEY).build(store)
    with ind.open_warehouse(tmp_path / "wh") as con:
        repeats = ind.run(con, ind.indicator("repeated_tests"), start="2026-01", end="2026-12")
        ncd = ind.run(con, ind.indicator("ncd_management"), end="2026-12")
    assert [(r["month"], r["test"], r["people"], r["repeated_tests"]) for r in repeats.rows] == [
        ("2026-03", "4548-4", 6, 6)
    ]
    assert repeats.rows[0]["cost_vnd"] == 6 * 100000
    (diabetes,) = ncd.rows
    assert (diabetes["disease"], diabetes["people"], diabetes["controlled"]) == ("diabetes", 6, 6)


def test_warehouse_commands(templates: tuple[MemoryStore, Path], tmp_path: Path) -> None:
    shutil.copyfile(templates[1], tmp_path / "c.db")  # the demo, loaded once per module
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    out = tmp_path / "wh"
    env = {"SOKHOE_VAR_DIR": str(tmp_path / "var")}
    first = runner.invoke(app, ["warehouse", "build", "--db", url, "--out", str(out)], env=env)
    assert first.exit_code == 0, first.output
    assert "full build" in first.output and "patient: 120" in first.output
    assert (tmp_path / "var" / "warehouse.key").exists()
    second = runner.invoke(app, ["warehouse", "build", "--db", url, "--out", str(out)], env=env)
    assert "incremental refresh: 0 resources" in second.output
    listed = runner.invoke(app, ["warehouse", "indicator"])
    assert "ncd_management" in listed.output
    shown = runner.invoke(app, ["warehouse", "indicator", "emr_deployment", "--out", str(out)])
    assert shown.exit_code == 0 and shown.output.startswith("sector,level,facilities")
    bad = runner.invoke(app, ["warehouse", "indicator", "nope", "--out", str(out)])
    assert bad.exit_code == 2


def test_outbreak_alerts_on_weekly_counts() -> None:
    """Twenty ordinary weeks of dengue, then a jump: only the jump alarms (EARS C2 on a short
    series); weeks older than asked for are not judged."""
    import pandas as pd

    from sokhoe.warehouse.notifiable import alerts

    weeks = pd.date_range("2026-01-05", periods=21, freq="7D")
    counts = pd.DataFrame(
        {
            "area": "79",
            "disease": "dengue",
            "week": weeks,
            "count": [40 if i == 20 else 6 + (i % 3) for i in range(21)],
        }
    )
    found = alerts(counts)
    assert list(found.loc[found["alarm"], "week"]) == [weeks[20]]
    assert found.iloc[-1]["threshold"] < 40
    assert len(alerts(counts, weeks=5)) == 5


def test_the_surveillance_indicator_runs_over_the_demo(loaded: FhirStore, tmp_path: Path) -> None:
    Warehouse(tmp_path / "wh", KEY).build(loaded)
    with ind.open_warehouse(tmp_path / "wh") as con:
        result = ind.run(con, ind.indicator("notifiable_weekly"), suppress_below=1)
    assert result.columns[-4:] == ["expected", "threshold", "alarm", "suppressed"]
    assert result.rows  # the demo has dengue, measles or HFMD in the last year
    assert {r["disease"] for r in result.rows} <= {"dengue", "measles", "hand-foot-mouth"}
    assert all(isinstance(r["alarm"], bool) for r in result.rows)
