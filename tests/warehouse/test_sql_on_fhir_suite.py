"""The HL7 SQL on FHIR v2 specification's own test suite, one pytest case per spec case.

The cases are read from the suite's JSON files at collection time (ids ``file::title``); none
is skipped or expected to fail. A second test writes the suite's report in the specification's
``test-report.schema.json`` format and checks it against that schema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sokhoe.warehouse.viewdef_conformance import load_cases, report, run_case, suite_files
from tests.conftest import SHARED_DATA

SUITE = SHARED_DATA / "sql-on-fhir-tests"
CASES = list(load_cases(SUITE))


def test_the_whole_suite_is_collected() -> None:
    # 22 files and 134 cases at the pinned commit; a lost file or case must not pass silently.
    assert len(suite_files(SUITE)) == 22
    assert len(CASES) == 134
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spec_case(case: Any) -> None:
    result = run_case(case)
    assert result.passed, result.error


def _check(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Validate ``value`` against the JSON-schema subset the report schema uses.

    (type, properties, patternProperties, additionalProperties: false, required, items,
    minItems) — enough to check the report's structure without a jsonschema dependency.
    """
    errors: list[str] = []
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
    }
    kind = schema.get("type")
    if kind and not isinstance(value, types.get(kind, object)):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing {key!r}")
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for key, item in value.items():
            matched = False
            if key in props:
                matched = True
                errors += _check(props[key], item, f"{where}.{key}")
            for pattern, sub in patterns.items():
                if re.search(pattern, key):
                    matched = True
                    errors += _check(sub, item, f"{where}.{key}")
            if not matched and schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected key {key!r}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            errors += _check(schema.get("items", {}), item, f"{where}[{i}]")
    return errors


def test_report_in_the_spec_format(tmp_path: Path) -> None:
    out = tmp_path / "test-report.json"
    out.write_text(json.dumps(report(SUITE), indent=2), encoding="utf-8")

    written = json.loads(out.read_text(encoding="utf-8"))
    schema = json.loads((SUITE / "test-report.schema.json").read_text(encoding="utf-8"))
    assert _check(schema, written, "report") == []
    assert sorted(written) == [p.name for p in suite_files(SUITE)]
    results = [t["result"]["passed"] for suite in written.values() for t in suite["tests"]]
    assert len(results) == 134
    assert all(results)


def test_the_schema_check_catches_a_broken_report() -> None:
    # The hand-rolled checker must be able to fail, or the test above proves nothing.
    schema = json.loads((SUITE / "test-report.schema.json").read_text(encoding="utf-8"))
    assert _check(schema, {"basic.json": {"tests": []}}, "r")  # minItems 1
    assert _check(schema, {"basic.json": {"tests": [{"name": "x"}]}}, "r")  # no result
    assert _check(schema, {"basic.json": {"tests": [], "extra": 1}}, "r")
    assert _check(
        schema, {"basic.json": {"tests": [{"name": "x", "result": {"passed": "y"}}]}}, "r"
    )
