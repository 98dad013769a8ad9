"""``$lookup``, ``$expand`` and ``$validate-code`` over HTTP, by GET and by POST Parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.config import Settings
from sokhoe.store import MemoryStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, platform_token

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_VS = "http://hl7.org/fhir/ValueSet/icd-10"
DRUG_VS = "https://fhir.sokhoe.vn/ValueSet/drug"
FHIR_JSON = "application/fhir+json"


@pytest.fixture
def api() -> Iterator[TestClient]:
    """The app as served, signed in as the platform (terminology needs a caller too)."""
    app = create_app(Settings(base_url=BASE, database_url="sqlite://"), MemoryStore())
    with TestClient(app, base_url=BASE) as client:
        client.headers["Authorization"] = f"Bearer {platform_token(app)}"
        yield client


def test_terminology_needs_a_caller() -> None:
    app = create_app(Settings(base_url=BASE, database_url="sqlite://"), MemoryStore())
    with TestClient(app, base_url=BASE) as client:
        r = client.get("/fhir/CodeSystem/$lookup", params={"system": ICD10, "code": "I10"})
        assert r.status_code == 401


def _parameters(**values: Any) -> dict[str, Any]:
    kinds = {bool: "valueBoolean", int: "valueInteger", dict: "valueCoding"}
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": name, kinds.get(type(value), "valueString"): value}
            for name, value in values.items()
        ],
    }


def _out(body: dict[str, Any]) -> dict[str, list[Any]]:
    """Parameters as name -> values (a part list becomes a dict of its parts)."""
    out: dict[str, list[Any]] = {}
    for p in body["parameter"]:
        if "part" in p:
            value: Any = {
                q["name"]: next(v for k, v in q.items() if k != "name") for q in p["part"]
            }
        else:
            value = next(v for k, v in p.items() if k.startswith("value"))
        out.setdefault(p["name"], []).append(value)
    return out


def _issue(resp: Any) -> dict[str, Any]:
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = body["issue"][0]
    return issue


# --- $lookup ----------------------------------------------------------------------------------


def test_lookup_get(api: TestClient) -> None:
    resp = api.get("/fhir/CodeSystem/$lookup", params={"system": ICD10, "code": "E119"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith(FHIR_JSON)
    out = _out(resp.json())
    assert out["name"] == ["ICD10"]
    assert out["version"] == ["2019"]
    assert out["display"] == ["Type 2 diabetes mellitus without complications"]
    assert out["designation"] == [
        {"language": "vi", "value": "Bệnh đái tháo đường type 2 không có biến chứng"}
    ]
    props = {p["code"]: p["value"] for p in out["property"]}
    assert props == {"kind": "category", "parent": "E11", "leaf": True}


def test_lookup_post_with_coding_and_property_filter(api: TestClient) -> None:
    body = _parameters(coding={"system": ICD10, "code": "E11"}, property="child")
    resp = api.post("/fhir/CodeSystem/$lookup", json=body)
    assert resp.status_code == 200
    children = [p["value"] for p in _out(resp.json())["property"]]
    assert {p for p in children} >= {"E11.0", "E11.9"}
    assert all(c.startswith("E11.") for c in children)


def test_lookup_local_code_system(api: TestClient) -> None:
    params = {"system": "https://fhir.sokhoe.vn/CodeSystem/facility-level", "code": "commune"}
    out = _out(api.get("/fhir/CodeSystem/$lookup", params=params).json())
    assert out["display"] == ["Trạm y tế xã"]
    loinc = api.get(
        "/fhir/CodeSystem/$lookup", params={"system": "http://loinc.org", "code": "777-3"}
    )
    assert _out(loinc.json())["display"] == ["Platelets [#/volume] in Blood by Automated count"]


def test_lookup_errors(api: TestClient) -> None:
    unknown_code = api.get("/fhir/CodeSystem/$lookup", params={"system": ICD10, "code": "Q99.99"})
    assert unknown_code.status_code == 404
    assert _issue(unknown_code)["diagnostics"] == "'Q99.99' is not an ICD-10 code"
    unknown_system = api.get(
        "/fhir/CodeSystem/$lookup", params={"system": "http://snomed.info/sct", "code": "1"}
    )
    assert unknown_system.status_code == 404
    assert "http://snomed.info/sct" in _issue(unknown_system)["diagnostics"]
    missing = api.get("/fhir/CodeSystem/$lookup", params={"code": "E11"})
    assert missing.status_code == 400
    assert _issue(missing)["code"] == "required"
    assert _issue(missing)["expression"] == ["system"]


def test_post_must_be_parameters(api: TestClient) -> None:
    resp = api.post("/fhir/CodeSystem/$lookup", json={"resourceType": "Patient"})
    assert resp.status_code == 400
    assert "Parameters" in _issue(resp)["diagnostics"]
    no_body = api.post("/fhir/CodeSystem/$lookup", headers={"content-type": FHIR_JSON})
    assert no_body.status_code == 400


# --- $expand ----------------------------------------------------------------------------------


def test_expand_filter_count_offset(api: TestClient) -> None:
    resp = api.get("/fhir/ValueSet/$expand", params={"url": ICD10_VS, "filter": "pneumonia"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith(FHIR_JSON)
    body = resp.json()
    assert body["resourceType"] == "ValueSet"
    total = body["expansion"]["total"]
    codes = [c["code"] for c in body["expansion"]["contains"]]
    assert total == len(codes) > 20
    assert "J18.9" in codes
    page = api.get(
        "/fhir/ValueSet/$expand",
        params={"url": ICD10_VS, "filter": "pneumonia", "offset": "5", "count": "3"},
    ).json()["expansion"]
    assert page["total"] == total
    assert page["offset"] == 5
    assert [c["code"] for c in page["contains"]] == codes[5:8]


def test_expand_vietnamese_filter_and_display(api: TestClient) -> None:
    body = _parameters(url=ICD10_VS, filter="sot xuat huyet", displayLanguage="vi")
    resp = api.post("/fhir/ValueSet/$expand", json=body)
    assert resp.status_code == 200
    contains = resp.json()["expansion"]["contains"]
    assert contains == [{"system": ICD10, "code": "A91", "display": "Sốt xuất huyết Dengue"}]


def test_expand_local_value_set(api: TestClient) -> None:
    body = api.get("/fhir/ValueSet/$expand", params={"url": DRUG_VS, "filter": "AMLODIPIN"}).json()
    assert body["expansion"]["total"] == 1
    assert body["expansion"]["contains"][0]["display"] == "Amlodipin 5mg"
    assert body["compose"]["include"] == [{"system": "https://fhir.sokhoe.vn/CodeSystem/drug"}]


def test_expand_errors(api: TestClient) -> None:
    missing = api.get("/fhir/ValueSet/$expand")
    assert missing.status_code == 400
    assert _issue(missing)["diagnostics"] == "Parameter 'url' is required"
    unknown = api.get("/fhir/ValueSet/$expand", params={"url": "http://example.org/vs"})
    assert unknown.status_code == 404
    bad_count = api.get("/fhir/ValueSet/$expand", params={"url": ICD10_VS, "count": "many"})
    assert bad_count.status_code == 400
    assert _issue(bad_count)["expression"] == ["count"]


# --- $validate-code ---------------------------------------------------------------------------


def test_code_system_validate_code(api: TestClient) -> None:
    ok = api.get("/fhir/CodeSystem/$validate-code", params={"url": ICD10, "code": "I10"})
    assert ok.status_code == 200
    assert _out(ok.json()) == {
        "result": [True],
        "display": ["Essential (primary) hypertension"],
    }
    bad = _out(
        api.get("/fhir/CodeSystem/$validate-code", params={"system": ICD10, "code": "I10.9"}).json()
    )
    assert bad["result"] == [False]
    assert bad["message"] == ["'I10.9' is not a code of http://hl7.org/fhir/sid/icd-10"]


def test_validate_code_display(api: TestClient) -> None:
    body = _parameters(system=ICD10, code="I10", display="Tăng huyết áp vô căn (nguyên phát)")
    assert _out(api.post("/fhir/CodeSystem/$validate-code", json=body).json())["result"] == [True]
    body = _parameters(system=ICD10, code="I10", display="Hạ huyết áp")
    out = _out(api.post("/fhir/CodeSystem/$validate-code", json=body).json())
    assert out["result"] == [False]
    assert "does not match" in out["message"][0]


def test_value_set_validate_code(api: TestClient) -> None:
    ok = api.get("/fhir/ValueSet/$validate-code", params={"url": DRUG_VS, "code": "ORESOL"})
    assert _out(ok.json()) == {"result": [True], "display": ["Oresol 245"]}
    body = _parameters(url=DRUG_VS, coding={"system": ICD10, "code": "I10"})
    out = _out(api.post("/fhir/ValueSet/$validate-code", json=body).json())
    assert out["result"] == [False]
    assert "not in value set" in out["message"][0]


def test_validate_code_errors(api: TestClient) -> None:
    unknown = api.get(
        "/fhir/CodeSystem/$validate-code", params={"system": "http://example.org", "code": "x"}
    )
    assert unknown.status_code == 404
    assert _issue(unknown)["code"] == "not-found"
    no_code = api.get("/fhir/ValueSet/$validate-code", params={"url": ICD10_VS})
    assert no_code.status_code == 400
    assert _issue(no_code)["expression"] == ["code"]
    nothing = api.get("/fhir/ValueSet/$validate-code", params={"code": "I10"})
    assert nothing.status_code == 400
    assert _issue(nothing)["diagnostics"] == "Parameter 'url' or 'system' is required"
    repeated = api.get("/fhir/CodeSystem/$validate-code?system=" + ICD10 + "&code=I10&code=E11")
    assert repeated.status_code == 400
