"""``sokhoe ig build``: the Vietnam core implementation guide as a FHIR NPM package.

The layout the FHIR community's tools load (HAPI's validator, the IG publisher, Firely's
tooling): a folder ``package/`` holding ``package.json`` (name, version, ``fhirVersions``,
dependencies on ``hl7.fhir.r4.core``), ``.index.json`` (one entry per resource file) and one
JSON file per resource named ``{resourceType}-{id}.json``; or the same folder in a ``.tgz``.
The output is deterministic: files in a fixed order, keys sorted, no timestamps, so two builds
of the same version are byte for byte the same and a change shows in a diff.
See: https://hl7.org/fhir/packages.html
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any, Final

from sokhoe import __version__

NAME: Final = "vn.sokhoe.fhir.core"
CANONICAL: Final = "https://fhir.sokhoe.vn"


def resources() -> list[dict[str, Any]]:
    """Every resource of the package: StructureDefinitions, then the CodeSystems, ValueSets and
    NamingSystems the server serves (built by the code that serves them)."""
    from sokhoe.ig.profiles import structure_definitions
    from sokhoe.ig.terminology import code_system, own_code_systems, value_set
    from sokhoe.registry.naming import naming_systems

    systems = own_code_systems()
    return [
        *structure_definitions(),
        *(code_system(cs) for cs in systems),
        *(value_set(cs) for cs in systems),
        *naming_systems(),
    ]


def manifest() -> dict[str, Any]:
    return {
        "name": NAME,
        "version": __version__,
        "description": "Vietnam core implementation guide (sokhoe): profiles of Patient, "
        "Practitioner, Organization and Encounter, the identifier systems, code systems and "
        "value sets of the Vietnamese electronic health record",
        "author": "sokhoe",
        "license": "CC0-1.0",
        "canonical": CANONICAL,
        "url": CANONICAL,
        "type": "fhir.ig",
        "fhirVersions": ["4.0.1"],
        "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        "jurisdiction": "urn:iso:std:iso:3166#VN",
    }


def _dump(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def filename(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def index_entry(resource: dict[str, Any]) -> dict[str, Any]:
    """The ``.index.json`` entry of one resource file."""
    entry = {
        "filename": filename(resource),
        "resourceType": resource["resourceType"],
        "id": resource["id"],
    }
    keys = ["url", "version"]
    if resource["resourceType"] == "StructureDefinition":
        keys += ["kind", "type"]  # what the index's readers look profiles up by
    for key in keys:
        if isinstance(resource.get(key), str):
            entry[key] = resource[key]
    return entry


def files() -> dict[str, bytes]:
    """Path inside the package (``package/…``) -> content, in a fixed order."""
    found = sorted(resources(), key=filename)
    out = {"package/package.json": _dump(manifest())}
    out["package/.index.json"] = _dump(
        {"index-version": 1, "files": [index_entry(r) for r in found]}
    )
    for r in found:
        out[f"package/{filename(r)}"] = _dump(r)
    return out


def write_dir(out: Path) -> list[Path]:
    """Write the package under ``out`` (``out/package/…``); the paths written."""
    written = []
    for name, data in files().items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def write_tgz(target: Path) -> None:
    """The package as a gzipped tar (what ``npm pack`` makes), reproducible: fixed times and
    owners."""
    buffer = io.BytesIO()
    import gzip

    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files().items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
