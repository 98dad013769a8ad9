"""Gather the newest result of each benchmark in bench/results into summary.json, the file
the README quotes (one run of each, all from the same machine and session)."""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path
from typing import Any

RESULTS = Path("bench/results")
KINDS = {
    "store": re.compile(r"^\d{4}-\d\d-\d\d-\d+\.json$"),
    "mpi": re.compile(r"-mpi-\d+\.json$"),
    "warehouse": re.compile(r"-warehouse-\d+\.json$"),
    "bulk_export": re.compile(r"-bulk-export-\d+\.json$"),
    "hl7_mllp": re.compile(r"-hl7-mllp\.json$"),
    "clinic_pages": re.compile(r"-clinic-pages\.json$"),
    "prescribing": re.compile(r"-prescribing\.json$"),
    "portal_lighthouse": re.compile(r"-portal-lighthouse\.json$"),
    "portal_book": re.compile(r"-portal-book\.json$"),
    "http_reads": re.compile(r"-http-reads\.json$"),
    "peers": re.compile(r"-peers\.json$"),
}


def portal_line(result: dict[str, Any]) -> str:
    """One line of the portal's Lighthouse figures: each page's LCP, bytes, script, score."""
    pages = [
        f"{path} LCP {p['lcp_ms'] / 1000:.2f} s, {p['transfer_bytes'] / 1024:.1f} KB, "
        f"script {p['script_bytes'] / 1024:.1f} KB, accessibility {p['accessibility_score']}"
        for path, p in result.get("pages", {}).items()
    ]
    met = "all within" if result.get("all_meet_targets") else "NOT all within"
    tool = f"Lighthouse {result.get('lighthouse')}, mobile"
    return f"portal ({tool}): {'; '.join(pages)} ({met} targets)"


def main() -> None:
    summary: dict[str, object] = {}
    for kind, pattern in KINDS.items():
        found = sorted(p for p in RESULTS.glob("*.json") if pattern.search(p.name))
        if found:
            summary[kind] = json.loads(found[-1].read_text()) | {"file": found[-1].name}
    summary["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"summary of {', '.join(k for k in KINDS if k in summary)} -> {RESULTS / 'summary.json'}")
    if isinstance(summary.get("portal_lighthouse"), dict):
        print(portal_line(summary["portal_lighthouse"]))


if __name__ == "__main__":
    main()
