"""``sokhoe ig build``: a FHIR NPM package, deterministic, whose index matches its files and whose
profiles carry complete snapshots.
See: https://hl7.org/fhir/packages.html and https://hl7.org/fhir/R4/profiling.html#snapshot"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from sokhoe import __version__
from sokhoe.cli import app
from sokhoe.fhir.validation import find_issues
from sokhoe.ig.base import base_elements
from sokhoe.ig.package import NAME, files
from sokhoe.ig.profiles import PROFILES, known, structure_definitions


def test_the_command_writes_the_same_package_as_a_folder_and_a_tgz_twice(tmp_path: Path) -> None:
    runner = CliRunner()
    for n in (1, 2):
        done = runner.invoke(
            app,
            ["ig", "build", "--out", str(tmp_path / f"d{n}"), "--tgz", str(tmp_path / f"{n}.tgz")],
        )
        assert done.exit_code == 0, done.output
    first = sorted(
        p.relative_to(tmp_path / "d1") for p in (tmp_path / "d1").rglob("*") if p.is_file()
    )
    second = sorted(
        p.relative_to(tmp_path / "d2") for p in (tmp_path / "d2").rglob("*") if p.is_file()
    )
    assert first == second and len(first) == len(files())
    assert all(
        (tmp_path / "d1" / p).read_bytes() == (tmp_path / "d2" / p).read_bytes() for p in first
    )
    assert (tmp_path / "1.tgz").read_bytes() == (tmp_path / "2.tgz").read_bytes()
    with tarfile.open(tmp_path / "1.tgz") as tar:
        names = tar.getnames()
        assert names == list(files())
        manifest = tar.extractfile("package/package.json")
        assert manifest is not None and manifest.read() == files()["package/package.json"]
    assert runner.invoke(app, ["ig", "build"]).exit_code != 0  # nowhere to write


def test_the_manifest_and_the_index_describe_the_files() -> None:
    out = files()
    manifest = json.loads(out["package/package.json"])
    assert manifest["name"] == NAME and manifest["version"] == __version__
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["type"] == "fhir.ig" and manifest["canonical"] == "https://fhir.sokhoe.vn"
    index = json.loads(out["package/.index.json"])
    assert index["index-version"] == 1
    listed = {e["filename"]: e for e in index["files"]}
    on_disk = {n.removeprefix("package/") for n in out} - {"package.json", ".index.json"}
    assert set(listed) == on_disk
    for name, entry in listed.items():
        resource = json.loads(out[f"package/{name}"])
        keys = ["resourceType", "id", "url", "version"]
        if resource["resourceType"] == "StructureDefinition":
            keys += ["kind", "type"]
        for key in keys:
            assert entry.get(key) == resource.get(key), (name, key)
        assert name == f"{resource['resourceType']}-{resource['id']}.json"
    kinds = {e["resourceType"] for e in index["files"]}
    assert kinds == {"StructureDefinition", "CodeSystem", "ValueSet", "NamingSystem"}
    assert {"cccd", "bhyt", "mrn"} <= {
        e["id"] for e in index["files"] if e["resourceType"] == "NamingSystem"
    }


def test_every_resource_of_the_package_is_valid_r4_for_the_servers_own_validator() -> None:
    for name, data in files().items():
        if name.endswith(("package.json", ".index.json")):
            continue
        assert find_issues(json.loads(data)) == [], name


def _ids(elements: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in elements]


def test_each_snapshot_has_every_base_element_in_order_and_the_differential_applied() -> None:
    for sd in structure_definitions():
        snapshot = sd["snapshot"]["element"]
        ids = _ids(snapshot)
        assert len(ids) == len(set(ids)), sd["id"]
        base = _ids(base_elements(sd["type"]))
        assert [i for i in ids if i in set(base)] == base, sd["id"]  # all, in the base's order
        by_id = {e["id"]: e for e in snapshot}
        diff = sd["differential"]["element"]
        assert [ids.index(d["id"]) for d in diff] == sorted(ids.index(d["id"]) for d in diff)
        for change in diff:
            element = by_id[change["id"]]
            assert element["path"] == change["path"]
            for key, value in change.items():
                if key == "constraint":
                    assert all(c in element["constraint"] for c in value)
                elif key not in ("id", "path"):
                    assert element[key] == value, (change["id"], key)
        for element in snapshot:
            assert {"id", "path", "min", "max", "base"} <= set(element), element["id"]
            assert element["path"] == element["id"].split(":")[0] or ":" in element["id"]


def test_slices_carry_their_type_children_and_the_discriminators_values() -> None:
    patient = known(PROFILES[0][2])
    assert patient is not None
    by_id = {e["id"]: e for e in patient["snapshot"]["element"]}
    assert by_id["Patient.identifier"]["slicing"]["discriminator"] == [
        {"type": "value", "path": "system"}
    ]
    cccd = by_id["Patient.identifier:cccd"]
    assert cccd["sliceName"] == "cccd" and cccd["path"] == "Patient.identifier"
    assert by_id["Patient.identifier:cccd.system"]["fixedUri"] == "https://fhir.sokhoe.vn/sid/cccd"
    assert by_id["Patient.identifier:cccd.value"]["base"] == {
        "path": "Identifier.value",
        "min": 0,
        "max": "1",
    }
    assert by_id["Patient.address.extension:province"]["type"][0]["profile"] == [
        "https://fhir.sokhoe.vn/StructureDefinition/address-province"
    ]
