"""Run the SQL on FHIR v2 test suite and print the pass count per file (for the README).

    .venv/bin/python scripts/sql_on_fhir_report.py [--suite DIR] [--out test-report.json]

``--out`` writes the report in the specification's ``test-report.schema.json`` format, the file
implementations publish on the SQL on FHIR implementations page. The exit code is 1 when any
case fails. The suite folder defaults to ``$SOKHOE_SHARED_DATA/sql-on-fhir-tests`` or the
``shared/data`` folder beside the checkout.

See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/implementations.html
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from sokhoe.warehouse.viewdef_conformance import report


def _default_suite() -> Path:
    override = os.environ.get("SOKHOE_SHARED_DATA")
    candidates = [Path(override)] if override else []
    candidates += [p / "shared" / "data" for p in Path(__file__).resolve().parents]
    for candidate in candidates:
        if (candidate / "sql-on-fhir-tests").is_dir():
            return candidate / "sql-on-fhir-tests"
    return Path("sql-on-fhir-tests")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=_default_suite(), help="the tests folder")
    parser.add_argument("--out", type=Path, help="write the JSON test report here")
    args = parser.parse_args(argv)
    if not args.suite.is_dir():
        sys.stderr.write(f"error: no test suite folder at {args.suite}\n")
        return 2

    started = time.perf_counter()
    result = report(args.suite)
    elapsed = time.perf_counter() - started

    total = passed = 0
    lines = []
    for name, suite in result.items():
        results = [t["result"]["passed"] for t in suite["tests"]]
        total += len(results)
        passed += sum(results)
        lines.append(f"| {name} | {sum(results)} / {len(results)} |")
        for t in suite["tests"]:
            if not t["result"]["passed"]:
                lines.append(f"|   FAILED: {t['name']} | {t['result'].get('error', '')[:200]} |")
    sys.stdout.write("| file | passed |\n|---|---|\n" + "\n".join(lines) + "\n")
    sys.stdout.write(f"| **total** | **{passed} / {total}** |\n")
    sys.stdout.write(f"\n({len(result)} files, {elapsed:.2f} s)\n")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        sys.stdout.write(f"report written to {args.out}\n")
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main())
