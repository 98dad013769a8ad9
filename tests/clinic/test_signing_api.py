"""``Encounter/$sign`` and ``Provenance/$verify-signature`` over HTTP, on SQLite and PostgreSQL.

Facility A registered the patient and wrote a visit (an Encounter and an Observation); A's
doctor signed it with their certificate when the world was made. Every attempt below to sign
as someone else, or to write or undo a signature or a signed version through the REST API or a
bundle, is refused and leaves every version of every resource as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from sokhoe.access.accounts import ROLE_SCOPES, create_user, enable_totp
from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.clinic.certificates import make_development_certificate
from sokhoe.config import Settings
from sokhoe.errors import NotSupported
from sokhoe.operations.sign import run_sign
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.api_helpers import check_in
from tests.clinic.world import ACT, P12_PASSWORD, PASSWORD, A, B, tamper
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS, module_store

QR = "079090001234|Nguyễn Văn An|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"
Headers = dict[str, str]


@dataclass
class World:
    api: TestClient
    store: SqlStore
    tokens: TokenService
    headers: dict[str, Headers]
    ids: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)

    def snapshot(self) -> tuple[int, list[tuple[str, str, int]]]:
        with self.store.begin() as tx:
            found, total = tx.history(None, None, None, 100_000, 0)
        return total, sorted((r.resource_type, r.id, r.version_id) for r in found)

    def doctor(self, username: str, facility: str = A, role: str = "doctor") -> Headers:
        """A new staff member with an authenticator app (each test its own TOTP steps)."""
        create_user(
            self.tokens.engine,
            username,
            PASSWORD,
            role,
            f"BS. {username}",
            facility,
            hasher=FAST_HASHER,
        )
        self.secrets[username] = pyotp.parse_uri(enable_totp(self.tokens.engine, username)).secret
        p = Principal(
            "staff", username, f"BS. {username}", role, facility, scopes=ROLE_SCOPES[role]
        )
        return {"Authorization": f"Bearer {self.tokens.issue(p)[0]}"}

    def sign(self, headers: Headers, encounter: str, method: str, code: str | None = None) -> Any:
        params = [{"name": "method", "valueCode": method}]
        if code is not None:
            params.append({"name": "code", "valueString": code})
        body = {"resourceType": "Parameters", "parameter": params}
        return self.api.post(f"/fhir/Encounter/{encounter}/$sign", json=body, headers=headers)

    def refused(self, attack: Callable[[Headers], Any], *callers: str, status: int = 403) -> None:
        """Each caller's ``attack`` is refused with ``status`` and changes nothing."""
        for name in callers or tuple(self.headers):
            before = self.snapshot()
            r = attack(self.headers[name])
            assert r.status_code == status, (name, r.status_code, r.text[:300])
            assert r.json()["resourceType"] == "OperationOutcome", name
            assert self.snapshot() == before, f"{name}: the store changed"


def _visit(api: TestClient, a: Headers, patient: str, org: str) -> tuple[str, str]:
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT, "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": f"Organization/{org}"},
    }
    enc = api.post("/fhir/Encounter", json=encounter, headers=a)
    assert enc.status_code == 201, enc.text
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{enc.json()['id']}"},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
    made = api.post("/fhir/Observation", json=obs, headers=a)
    assert made.status_code == 201, made.text
    return enc.json()["id"], made.json()["id"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("signing")
    store = module_store(request, tmp, "signing")
    settings = Settings(
        **FAST_PASSWORDS,
        base_url=BASE,
        database_url="sqlite://",
        var_dir=tmp,
        signing_p12_dir=tmp / "p12",
        signing_p12_password=SecretStr(P12_PASSWORD),
    )
    make_development_certificate("BS. An", tmp / "p12" / "bs.an.p12", P12_PASSWORD)
    app = create_app(settings, store)
    with TestClient(app, base_url=BASE) as api:
        tokens: TokenService = app.state.tokens

        def client(facility: str | None) -> Headers:
            new = create_client(tokens.engine, f"HIS {facility}", ["system/*.cruds"], facility)
            principal = authenticate_client(tokens.engine, new.client_id, new.client_secret)
            return {"Authorization": f"Bearer {tokens.issue(principal)[0]}"}

        headers = {"platform": client(None), "system of A": client(A)}
        world = World(api, store, tokens, headers, {})
        headers["doctor of A"] = world.doctor("bs.an")
        headers["doctor of B"] = world.doctor("bs.binh", B)
        headers["pharmacist of A"] = world.doctor("ds.cuc", A, "pharmacist")
        org = {
            "resourceType": "Organization",
            "identifier": [{"system": "https://fhir.sokhoe.vn/sid/ma-cskcb", "value": A}],
            "name": "Bệnh viện A",
        }
        made = api.post("/fhir/Organization", json=org, headers=headers["platform"])
        world.ids["org"] = made.json()["id"]
        world.ids["patient"] = check_in(api, headers["system of A"], QR)
        enc, obs = _visit(api, headers["system of A"], world.ids["patient"], world.ids["org"])
        world.ids.update(encounter=enc, obs=obs)
        signed = world.sign(headers["doctor of A"], enc, "pkcs12")
        assert signed.status_code == 200, signed.text
        world.ids["provenance"] = signed.json()["id"]
        yield world
    store.close()


def test_a_doctor_signs_with_a_totp_code_and_anyone_treating_verifies(world: World) -> None:
    headers = world.doctor("bs.dung")
    code = pyotp.TOTP(world.secrets["bs.dung"]).now()
    r = world.sign(headers, world.ids["encounter"], "totp", code)
    assert r.status_code == 200, r.text
    provenance = r.json()
    assert provenance["resourceType"] == "Provenance"
    assert provenance["agent"][0]["who"]["identifier"]["value"] == "bs.dung"
    assert provenance["agent"][0]["onBehalfOf"]["reference"] == f"Organization/{world.ids['org']}"
    for method in ("get", "post"):
        url = f"/fhir/Provenance/{provenance['id']}/$verify-signature"
        answer = getattr(world.api, method)(url, headers=headers).json()
        params = {p["name"]: p for p in answer["parameter"]}
        assert params["valid"]["valueBoolean"] is True, answer
        assert params["method"]["valueString"] == "totp-confirmation"
        assert "reason" not in params


def test_a_doctor_signs_with_the_certificate_configured_for_them(world: World) -> None:
    url = f"/fhir/Provenance/{world.ids['provenance']}/$verify-signature"
    answer = world.api.get(url, headers=world.headers["system of A"]).json()
    params = {p["name"]: p for p in answer["parameter"]}
    assert params["valid"]["valueBoolean"] is True, answer
    assert params["method"]["valueString"] == "pkcs12-rsa-sha256"
    assert "development certificate" in params["note"]["valueString"]
    # no certificate for this doctor: refused, with the reason
    world.refused(lambda h: world.sign(h, world.ids["encounter"], "pkcs12"), "doctor of B")
    other = world.doctor("bs.em")
    r = world.sign(other, world.ids["encounter"], "pkcs12")
    assert r.status_code == 403 and "No signing certificate" in r.text


def test_a_totp_code_confirms_once(world: World) -> None:
    headers = world.doctor("bs.giang")
    code = pyotp.TOTP(world.secrets["bs.giang"]).now()
    assert world.sign(headers, world.ids["encounter"], "totp", code).status_code == 200
    before = world.snapshot()
    again = world.sign(headers, world.ids["encounter"], "totp", code)
    assert again.status_code == 403 and "already used" in again.text
    assert world.snapshot() == before


def test_only_clinicians_of_the_visit_s_facility_sign(world: World) -> None:
    enc = world.ids["encounter"]
    world.refused(lambda h: world.sign(h, enc, "pkcs12"), "doctor of B", "pharmacist of A")
    world.refused(lambda h: world.sign(h, enc, "pkcs12"), "system of A", "platform")
    code = pyotp.TOTP(world.secrets["bs.binh"]).now()
    world.refused(lambda h: world.sign(h, enc, "totp", code), "doctor of B")
    # B, with no relationship, does not even read the signature
    url = f"/fhir/Provenance/{world.ids['provenance']}"
    assert world.api.get(url, headers=world.headers["doctor of B"]).status_code == 403
    verify = f"{url}/$verify-signature"
    assert world.api.get(verify, headers=world.headers["doctor of B"]).status_code == 403


def test_a_signature_is_written_by_the_signing_operation_only(world: World) -> None:
    pid = world.ids["provenance"]
    with world.store.begin() as tx:
        found = tx.read("Provenance", pid)
    assert found is not None and found.content is not None
    stored = dict(found.content)
    forged = {k: v for k, v in stored.items() if k not in ("id", "meta")}
    altered = {**stored, "recorded": "2020-01-01T00:00:00Z"}
    tx_entry: list[dict[str, Any]] = [
        {"resource": forged, "request": {"method": "POST", "url": "Provenance"}},
        {"resource": altered, "request": {"method": "PUT", "url": f"Provenance/{pid}"}},
        {"request": {"method": "DELETE", "url": f"Provenance/{pid}"}},
    ]
    callers = ("platform", "system of A", "doctor of A")
    world.refused(lambda h: world.api.post("/fhir/Provenance", json=forged, headers=h), *callers)
    url = f"/fhir/Provenance/{pid}"
    world.refused(lambda h: world.api.put(url, json=altered, headers=h), *callers)
    world.refused(lambda h: world.api.delete(url, headers=h), *callers)
    for entry in tx_entry:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
        world.refused(lambda h, b=bundle: world.api.post("/fhir", json=b, headers=h), *callers)
    r = world.api.post("/fhir/Provenance", json=forged, headers=world.headers["system of A"])
    assert "signature Provenance is written only by the signing operations" in r.text


def test_a_signed_version_is_frozen_over_rest_and_bundles(world: World) -> None:
    obs_id, enc = world.ids["obs"], world.ids["encounter"]
    with world.store.begin() as tx:
        found = tx.read("Observation", obs_id)
    assert found is not None and found.content is not None
    changed = {**found.content, "valueQuantity": {"value": 99, "unit": "/min"}}
    callers = ("platform", "system of A", "doctor of A")
    url = f"/fhir/Observation/{obs_id}"
    world.refused(lambda h: world.api.put(url, json=changed, headers=h), *callers)
    world.refused(lambda h: world.api.delete(url, headers=h), *callers)
    world.refused(lambda h: world.api.delete(f"/fhir/Encounter/{enc}", headers=h), *callers)
    cond = f"/fhir/Observation?_id={obs_id}"
    world.refused(lambda h: world.api.put(cond, json=changed, headers=h), *callers)
    entry = {"resource": changed, "request": {"method": "PUT", "url": f"Observation/{obs_id}"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    world.refused(lambda h: world.api.post("/fhir", json=bundle, headers=h), *callers)
    r = world.api.put(url, json=changed, headers=world.headers["doctor of A"])
    issue = r.json()["issue"][0]
    assert "signed content is frozen; write an amendment" in issue["diagnostics"]


def test_a_tampered_visit_fails_verification_over_http(world: World) -> None:
    a = world.headers["system of A"]
    enc, obs = _visit(world.api, a, world.ids["patient"], world.ids["org"])
    signed = world.sign(world.headers["doctor of A"], enc, "pkcs12")
    assert signed.status_code == 200, signed.text
    tamper(world.store, "Observation", obs, 1, {"status": "cancelled"})
    url = f"/fhir/Provenance/{signed.json()['id']}/$verify-signature"
    answer = world.api.get(url, headers=a).json()
    params = answer["parameter"]
    assert {"name": "valid", "valueBoolean": False} in params
    reasons = [p["valueString"] for p in params if p["name"] == "reason"]
    assert any("signed content changed" in r for r in reasons), reasons


def test_wrong_parameters_and_configuration_are_explained(world: World) -> None:
    enc = world.ids["encounter"]
    doctor = world.headers["doctor of A"]
    for method, code, text in (
        ("fax", None, "'totp' or 'pkcs12'"),
        ("totp", None, "'code'"),
    ):
        r = world.sign(doctor, enc, method, code)
        assert r.status_code == 400 and text in r.text, r.text
    r = world.api.post(
        f"/fhir/Encounter/{enc}/$sign", json={"resourceType": "Patient"}, headers=doctor
    )
    assert r.status_code == 400
    r = world.sign(doctor, "no-such-visit", "pkcs12")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    repo = world.api.app.state.repository.for_caller(  # type: ignore[attr-defined]
        Principal("staff", "bs.an", "BS. An", "doctor", A, scopes=ROLE_SCOPES["doctor"])
    )
    body = {"resourceType": "Parameters", "parameter": [{"name": "method", "valueCode": "pkcs12"}]}
    with pytest.raises(NotSupported, match="SOKHOE_SIGNING_P12_DIR"):
        run_sign(repo, enc, body, Settings(signing_p12_dir=None, signing_p12_password=None))
