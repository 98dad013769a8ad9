"""Create, read, vread, update, delete and their conditional forms, over SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sokhoe.config import Settings
from sokhoe.store.ports import FhirStore
from sokhoe.web.app import create_app
from tests.conftest import BASE

FHIR = {"Content-Type": "application/fhir+json"}


def patient(family: str = "Nguyễn", given: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": given or ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1990-05-17",
        **extra,
    }


def test_create_read_vread(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json=patient(), headers=FHIR)
    assert r.status_code == 201
    body = r.json()
    rid = body["id"]
    assert body["meta"]["versionId"] == "1"
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/Patient/{rid}/_history/1")
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert "last-modified" in r.headers
    got = client.get(f"/fhir/Patient/{rid}")
    assert got.status_code == 200
    assert got.json()["name"][0]["family"] == "Nguyễn"
    assert client.get(f"/fhir/Patient/{rid}/_history/1").json()["id"] == rid
    assert client.get(f"/fhir/Patient/{rid}/_history/2").status_code == 404


def test_update_versions_and_if_match(client: TestClient) -> None:
    rid = client.post("/fhir/Patient", json=patient()).json()["id"]
    changed = {**patient(family="Trần"), "id": rid}
    r = client.put(f"/fhir/Patient/{rid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    stale = client.put(
        f"/fhir/Patient/{rid}", json=changed | {"gender": "female"}, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Patient/{rid}").json()["gender"] == "male"
    # an identical update makes no new version
    same = client.put(f"/fhir/Patient/{rid}", json=changed)
    assert same.json()["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{rid}/_history/1").json()["name"][0]["family"] == "Nguyễn"


def test_update_as_create_with_client_id(client: TestClient) -> None:
    r = client.put("/fhir/Patient/bn-0001", json={**patient(), "id": "bn-0001"})
    assert r.status_code == 201
    assert client.get("/fhir/Patient/bn-0001").status_code == 200


def test_update_id_mismatch_is_refused(client: TestClient) -> None:
    r = client.put("/fhir/Patient/a", json={**patient(), "id": "b"})
    assert r.status_code == 400
    assert client.get("/fhir/Patient/a").status_code == 404


def test_delete_keeps_history(client: TestClient) -> None:
    rid = client.post("/fhir/Patient", json=patient()).json()["id"]
    assert client.delete(f"/fhir/Patient/{rid}").status_code == 204
    gone = client.get(f"/fhir/Patient/{rid}")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    hist = client.get(f"/fhir/Patient/{rid}/_history").json()
    assert hist["type"] == "history"
    assert hist["total"] == 2
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "POST"]
    assert client.get(f"/fhir/Patient/{rid}/_history/1").status_code == 200
    assert client.get("/fhir/Patient", params={"_id": rid}).json()["total"] == 0
    # re-creating with the same id continues the version history
    again = client.put(f"/fhir/Patient/{rid}", json={**patient(), "id": rid})
    assert again.status_code == 201
    assert again.json()["meta"]["versionId"] == "3"


def test_conditional_create(client: TestClient) -> None:
    p = patient(identifier=[{"system": "https://fhir.sokhoe.vn/sid/cccd", "value": "001090012345"}])
    cond = {"If-None-Exist": "identifier=https://fhir.sokhoe.vn/sid/cccd|001090012345"}
    first = client.post("/fhir/Patient", json=p, headers=cond)
    second = client.post("/fhir/Patient", json=p, headers=cond)
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_conditional_create_with_a_url_as_hapi_sends_it(client: TestClient) -> None:
    """HAPI FHIR's generic client puts ``[base]/Patient?params`` in If-None-Exist (the
    specification: the parameters alone); both find the same Patient, in a transaction too. A
    URL naming another type is refused and writes nothing."""
    cccd = "https://fhir.sokhoe.vn/sid/cccd"
    p = patient(identifier=[{"system": cccd, "value": "001090012399"}])
    first = client.post("/fhir/Patient", json=p)
    assert first.status_code == 201
    for value in (
        f"http://testserver/fhir/Patient?identifier={cccd.replace('/', '%2F')}%7C001090012399",
        f"Patient?identifier={cccd}|001090012399",
    ):
        again = client.post("/fhir/Patient", json=p, headers={"If-None-Exist": value})
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
    entry = {
        "resource": p,
        "request": {
            "method": "POST",
            "url": "Patient",
            "ifNoneExist": f"http://testserver/fhir/Patient?identifier={cccd}|001090012399",
        },
    }
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    answer = client.post("/fhir", json=tx)
    assert answer.status_code == 200, answer.text
    assert answer.json()["entry"][0]["response"]["status"].startswith("200")
    wrong = client.post(
        "/fhir/Patient",
        json=p,
        headers={"If-None-Exist": f"http://testserver/fhir/Observation?identifier={cccd}|1"},
    )
    assert wrong.status_code == 400
    assert "does not search Patient" in wrong.text
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_conditional_update_and_delete(client: TestClient) -> None:
    ident = [{"system": "urn:mrn", "value": "42"}]
    r1 = client.put("/fhir/Patient?identifier=urn:mrn|42", json=patient(identifier=ident))
    assert r1.status_code == 201
    r2 = client.put(
        "/fhir/Patient?identifier=urn:mrn|42", json=patient(family="Lê", identifier=ident)
    )
    assert r2.status_code == 200
    assert r2.json()["id"] == r1.json()["id"]
    client.post("/fhir/Patient", json=patient(identifier=[{"system": "urn:mrn", "value": "7"}]))
    client.post("/fhir/Patient", json=patient(identifier=[{"system": "urn:mrn", "value": "7"}]))
    many = client.put("/fhir/Patient?identifier=urn:mrn|7", json=patient())
    assert many.status_code == 412
    assert client.delete("/fhir/Patient?identifier=urn:mrn|42").status_code == 204
    assert client.get(f"/fhir/Patient/{r1.json()['id']}").status_code == 410


def test_prefer_return(client: TestClient) -> None:
    minimal = client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "location" in minimal.headers
    oo = client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=OperationOutcome"})
    assert oo.json()["resourceType"] == "OperationOutcome"


def test_errors_are_operation_outcomes(client: TestClient) -> None:
    cases = [
        client.get("/fhir/Nonsense/1"),
        client.get("/fhir/Patient/unknown"),
        client.post("/fhir/Patient", content=b"{not json", headers=FHIR),
        client.post("/fhir/Patient", json={"resourceType": "Observation", "status": "final"}),
        client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "x"}),
        client.post(
            "/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "application/xml"}
        ),
    ]
    assert [c.status_code for c in cases] == [404, 404, 400, 400, 422, 415]
    for c in cases:
        assert c.json()["resourceType"] == "OperationOutcome"
        assert c.json()["issue"][0]["diagnostics"]
    invalid = cases[4].json()["issue"][0]
    assert invalid["expression"] == ["Patient.gender"]
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_metadata_is_truthful(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in cs["rest"][0]["resource"]}
    assert {"Patient", "Observation", "AuditEvent", "Consent"} <= set(resources)
    names = {p["name"] for p in resources["Patient"]["searchParam"]}
    assert {"name", "identifier", "birthdate", "gender"} <= names
    assert {
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    } in resources["Patient"]["operation"]
    security = cs["rest"][0]["security"]  # how to sign in: SMART, and where to look
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert security["cors"] is False  # no origins configured
    assert "/.well-known/smart-configuration" in security["description"]
    assert "/auth/token" in security["description"]


def test_home_and_docs(client: TestClient) -> None:
    assert "FHIR" in client.get("/").text
    docs = client.get("/docs")
    assert docs.status_code == 200
    # isolated hospital networks: every asset the page loads is served by the app itself
    assert "https://" not in docs.text and "http://" not in docs.text
    for asset in ("/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css"):
        assert asset in docs.text
        assert client.get(asset).status_code == 200
    assert docs.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
    assert client.get("/openapi.json").json()["info"]["title"].startswith("sokhoe")


def test_cors_allows_listed_origins_only(store: FhirStore) -> None:
    settings = Settings(
        base_url=BASE, database_url="sqlite://", cors_origins=["https://portal.example.vn"]
    )
    with TestClient(create_app(settings, store), base_url=BASE) as c:
        ok = c.options(
            "/fhir/metadata",
            headers={"Origin": "https://portal.example.vn", "Access-Control-Request-Method": "GET"},
        )
        assert ok.headers.get("access-control-allow-origin") == "https://portal.example.vn"
        other = c.get("/fhir/metadata", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        assert other.json()["rest"][0]["security"]["cors"] is True  # and says so
