"""Run the SQL on FHIR specification's own test suite against our ViewDefinition engine.

The suite is data (one JSON file per feature, ``tests.schema.json`` describes it): each case has a
view and either the expected rows (``expect``, compared as an unordered multiset; column order
checked when ``expectColumns`` is given), a row count (``expectCount``) or ``expectError``. The
results are reported in the specification's ``test-report.schema.json`` format, which
implementations publish to the SQL on FHIR implementations page.

See: https://github.com/FHIR/sql-on-fhir-v2/tree/master/tests
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sokhoe.errors import FhirError
from sokhoe.warehouse.viewdef import ViewDefinition, run_view


@dataclass(frozen=True)
class SuiteCase:
    """One test case of the suite, with the resources of its file."""

    file: str
    title: str
    case: dict[str, Any]
    resources: tuple[dict[str, Any], ...]

    @property
    def id(self) -> str:
        return f"{self.file}::{self.title}"


@dataclass(frozen=True)
class CaseResult:
    passed: bool
    error: str | None = None


def suite_files(folder: Path) -> list[Path]:
    """The suite's test files (every ``*.json`` except the schemas), sorted by name."""
    return sorted(p for p in folder.glob("*.json") if not p.name.endswith("schema.json"))


def load_cases(folder: Path) -> Iterator[SuiteCase]:
    for path in suite_files(folder):
        data = json.loads(path.read_text(encoding="utf-8"))
        resources = tuple(data.get("resources", []))
        for case in data["tests"]:
            yield SuiteCase(path.name, case["title"], case, resources)


def _canonical(value: Any) -> Any:
    """A hashable form of a cell in which 5 == 5.0 but True != 1 (JSON number semantics)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", round(float(value), 9))
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    return ("other", repr(value))


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, _canonical(v)) for k, v in row.items()))


def run_case(case: SuiteCase) -> CaseResult:
    """Run one case; never raises (an unexpected exception is a failed case)."""
    spec = case.case
    try:
        view = ViewDefinition.parse(spec["view"])
        rows = list(run_view(view, case.resources))
    except FhirError as e:
        if spec.get("expectError"):
            return CaseResult(True)
        return CaseResult(False, f"unexpected error: {e}")
    except Exception as e:  # a bug in the engine: report it as the case's failure
        return CaseResult(False, f"engine crashed: {type(e).__name__}: {e}")
    if spec.get("expectError"):
        return CaseResult(False, f"expected an error, got {len(rows)} rows")
    if "expectCount" in spec:
        if len(rows) != spec["expectCount"]:
            return CaseResult(False, f"expected {spec['expectCount']} rows, got {len(rows)}")
        return CaseResult(True)
    expected = spec.get("expect", [])
    if "expectColumns" in spec:
        names = [c.name for c in view.columns]
        if names != spec["expectColumns"]:
            return CaseResult(False, f"expected columns {spec['expectColumns']}, got {names}")
    if Counter(_row_key(r) for r in rows) != Counter(_row_key(r) for r in expected):
        return CaseResult(False, f"expected rows {expected}, got {rows}")
    return CaseResult(True)


def report(folder: Path) -> dict[str, Any]:
    """Run every case and build the report in the spec's ``test-report.schema.json`` format."""
    out: dict[str, Any] = {}
    for case in load_cases(folder):
        result = run_case(case)
        entry: dict[str, Any] = {"name": case.title, "result": {"passed": result.passed}}
        if result.error:
            entry["result"]["error"] = result.error
        out.setdefault(case.file, {"tests": []})["tests"].append(entry)
    return out
