"""The catalogue over FHIR: ``$expand`` typeahead, and no client writes it (every backend)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.prescribing import VALUE_SET_BASE, import_catalogue, publish_reference
from sokhoe.prescribing.catalogue import CatalogueEntry, Ingredient

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def api(client: TestClient) -> TestClient:
    """A platform client (every scope) on a server whose catalogue was published."""
    publish_reference(client.app.state.repository)  # type: ignore[attr-defined]
    return client


def expand(api: TestClient, text: str, url: str = VALUE_SET_BASE, **more: Any) -> dict[str, Any]:
    r = api.get("/fhir/ValueSet/$expand", params={"url": url, "filter": text, **more})
    assert r.status_code == 200, r.text
    expansion: dict[str, Any] = r.json()["expansion"]
    return expansion


def names(expansion: dict[str, Any]) -> list[str]:
    return [c["display"] for c in expansion.get("contains", [])]


def test_typeahead_by_name_or_ingredient_without_accents(api: TestClient) -> None:
    para = expand(api, "para")
    assert "Paracetamol 500mg" in names(para) and para["total"] >= 8
    assert all("paracetamol" in n.lower() for n in names(para))
    assert names(expand(api, "paracetamol")) == names(para)
    assert names(expand(api, "amlo")) == ["Amlodipin 10mg", "Amlodipin 5mg"]
    assert "Vitamin C 500mg" in names(expand(api, "vitamin c"))
    assert "Vitamin C 500mg" in names(expand(api, "VITAMIN C"))
    # accents typed or not, either way round
    hoat = names(expand(api, "hoat huyet"))
    assert (
        hoat
        == names(expand(api, "Hoạt huyết"))
        == ["Hoạt huyết dưỡng não (cao đinh lăng, cao bạch quả)"]
    )
    assert "Natri clorid 0,9% 500ml" in names(expand(api, "natri clorid"))
    # by an ingredient that is not in the name, and by ATC code
    assert "Cotrimoxazol 400mg/80mg" in names(expand(api, "sulfamethoxazol"))
    assert "Oresol 245" in names(expand(api, "kali clorid"))
    assert "Metformin 500mg" in names(expand(api, "A10BA02"))
    first = expand(api, "para")["contains"][0]
    assert first["system"] == "https://fhir.sokhoe.vn/CodeSystem/drug"
    assert expand(api, "khongcothuocnay")["total"] == 0
    page = expand(api, "a", count=5, offset=5)
    assert len(page["contains"]) == 5 and page["total"] > 100


def test_one_source_and_a_new_import_are_seen(api: TestClient) -> None:
    repo = api.app.state.repository  # type: ignore[attr-defined]
    r = api.get("/fhir/ValueSet/$expand", params={"url": f"{VALUE_SET_BASE}-byt"})
    assert r.status_code == 404
    entry = CatalogueEntry("T1", "Thuốc thử Đặc biệt 5mg", (Ingredient("Đặc biệt", "5mg"),), "Viên")
    import_catalogue(repo, "byt", [entry], label="test")
    assert names(expand(api, "dac biet")) == ["Thuốc thử Đặc biệt 5mg"]
    only = expand(api, "", url=f"{VALUE_SET_BASE}-byt")
    assert only["total"] == 1 and only["contains"][0]["system"].endswith("/drug/byt")
    vs = api.get("/fhir/ValueSet/drug-catalogue-byt").json()
    assert vs["version"] == "1" and vs["url"] == f"{VALUE_SET_BASE}-byt"


def test_no_client_writes_the_catalogue(api: TestClient) -> None:
    current = api.get("/fhir/Medication/sokhoe-PARACETAMOL-500")
    assert current.status_code == 200
    body = current.json()
    assert any(
        e["url"].endswith("/drug-class")
        for e in api.get("/fhir/Medication/sokhoe-MORPHIN-10-TIEM").json()["extension"]
    )

    changed = {**body, "code": {**body["code"], "text": "Paracetamol 5000mg"}}
    r = api.put("/fhir/Medication/sokhoe-PARACETAMOL-500", json=changed)
    assert r.status_code == 403 and "drug catalogue" in r.text
    untagged = {k: v for k, v in changed.items() if k != "meta"}
    assert api.put("/fhir/Medication/sokhoe-PARACETAMOL-500", json=untagged).status_code == 403
    assert api.delete("/fhir/Medication/sokhoe-PARACETAMOL-500").status_code == 403
    new = {k: v for k, v in body.items() if k not in ("id", "meta")}
    assert api.post("/fhir/Medication", json=new).status_code == 403  # coded in the catalogue
    tagged = {
        "resourceType": "Medication",
        "meta": body["meta"],
        "code": {"text": "Fake"},
    }
    assert api.post("/fhir/Medication", json=tagged).status_code == 403
    vs = api.get("/fhir/ValueSet/drug-catalogue-sokhoe").json()
    assert (
        api.put("/fhir/ValueSet/drug-catalogue-sokhoe", json={**vs, "version": "9"}).status_code
        == 403
    )
    after = api.get("/fhir/Medication/sokhoe-PARACETAMOL-500").json()
    assert after["code"]["text"] == "Paracetamol 500mg" and after["meta"]["versionId"] == "1"
    # a Medication of another code system is an ordinary registry write for the platform
    other = {
        "resourceType": "Medication",
        "code": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "198440"}]
        },
    }
    assert api.post("/fhir/Medication", json=other).status_code == 201
