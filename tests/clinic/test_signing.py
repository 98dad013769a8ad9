"""Signing a visit, on every store: TOTP confirmation and PKCS#12 signatures verify; tampering
with the content or the Provenance is found; a TOTP step is good once; only the visit's own
facility signs; signed versions are frozen and an amendment is the way to correct them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sokhoe.access.consent import create_share, redeem_share
from sokhoe.access.otp import citizen_principal
from sokhoe.access.signed import SIGNATURE_ACTIVITY
from sokhoe.clinic import amend, load_visit, sign_visit, verify, verify_signature
from sokhoe.clinic.certificates import make_development_certificate
from sokhoe.clinic.provenance import EVIDENCE
from sokhoe.clinic.signatures import describe, signatures
from sokhoe.errors import Forbidden, InvalidRequest
from sokhoe.store import FhirStore
from tests.clinic.world import (
    DOCTOR_A,
    P12_PASSWORD,
    A,
    Clinic,
    make_clinic,
    staff,
    tamper,
)


@pytest.fixture(scope="module")
def p12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development certificate for the module (an RSA key takes a moment to make)."""
    path = tmp_path_factory.mktemp("p12") / f"{DOCTOR_A}.p12"
    return make_development_certificate("BS. Nguyễn Văn An", path, P12_PASSWORD)


@pytest.fixture
def clinic(store: FhirStore, p12: Path) -> Iterator[Clinic]:
    yield make_clinic(store, p12)


def _versions(clinic: Clinic, provenance: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    with clinic.store.begin() as tx:
        for target in provenance["target"]:
            rtype, rid, _, version = target["reference"].split("/")
            found = tx.vread(rtype, rid, int(version))
            assert found is not None and found.content is not None
            out.append(found.content)
    return out


def _evidence(provenance: dict[str, Any]) -> dict[str, Any]:
    ext = next(e for e in provenance["extension"] if e["url"] == EVIDENCE)
    return {
        e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in ext["extension"]
    }


def test_a_totp_confirmation_signs_the_visit_and_verifies(clinic: Clinic) -> None:
    ids = clinic.ids
    provenance = sign_visit(clinic.doctor_a, ids["encounter"], clinic.totp())
    targets = {t["reference"] for t in provenance["target"]}
    assert targets == {
        f"Encounter/{ids['encounter']}/_history/1",
        f"Observation/{ids['obs']}/_history/1",
        f"Condition/{ids['condition']}/_history/1",
    }
    assert provenance["activity"]["coding"][0] == {
        "system": SIGNATURE_ACTIVITY,
        "code": "sign",
        "display": provenance["activity"]["coding"][0]["display"],
    }
    agent = provenance["agent"][0]
    assert agent["who"]["identifier"]["value"] == DOCTOR_A
    assert agent["role"][0]["coding"][0]["code"] == "doctor"
    assert agent["onBehalfOf"] == {
        "reference": f"Organization/{ids['org_a']}",
        "display": "Bệnh viện A",
    }
    signature = provenance["signature"][0]
    assert signature["type"][0]["code"] == "1.2.840.10065.1.12.1.1"
    assert signature["targetFormat"] == "application/fhir+json"
    record = orjson.loads(base64.b64decode(signature["data"]))
    evidence = _evidence(provenance)
    assert evidence["method"] == "totp-confirmation"
    assert record["timeStep"] == evidence["timeStep"] and record["sha256"] == evidence["sha256"]
    assert clinic.code() not in orjson.dumps(provenance).decode()  # never kept
    with clinic.store.begin() as tx:
        stored = tx.read("Provenance", provenance["id"])
    assert stored is not None and stored.patient_id == ids["patient"]  # in the compartment
    result = verify_signature(clinic.doctor_a, provenance["id"])
    assert result.valid, result.reasons
    assert result.sha256 == result.recomputed == evidence["sha256"]


def test_a_pkcs12_signature_verifies_against_its_certificate(clinic: Clinic) -> None:
    provenance = sign_visit(clinic.doctor_a, clinic.ids["encounter"], clinic.pkcs12())
    evidence = _evidence(provenance)
    assert evidence["method"] == "pkcs12-rsa-sha256" and evidence["certificate"]
    result = verify_signature(clinic.doctor_a, provenance["id"])
    assert result.valid, result.reasons
    assert any("development certificate" in n for n in result.notes)
    # the same signature over other content, or other bytes over the same content, fail
    altered = base64.b64decode(provenance["signature"][0]["data"])
    forged = {**provenance["signature"][0], "data": base64.b64encode(altered[::-1]).decode()}
    bad = verify({**provenance, "signature": [forged]}, _versions(clinic, provenance))
    assert not bad.valid and any("does not match" in r for r in bad.reasons)


def test_content_changed_behind_the_door_fails_verification(clinic: Clinic) -> None:
    ids = clinic.ids
    provenance = sign_visit(clinic.doctor_a, ids["encounter"], clinic.pkcs12())
    totp = sign_visit(clinic.doctor_a, ids["encounter"], clinic.totp())
    tamper(clinic.store, "Observation", ids["obs"], 1, {"valueQuantity": {"value": 90}})
    for signed in (provenance, totp):
        result = verify_signature(clinic.platform, signed["id"])
        assert not result.valid
        assert any("signed content changed" in r for r in result.reasons), result.reasons
        assert result.sha256 != result.recomputed


def test_an_altered_provenance_fails_verification(clinic: Clinic) -> None:
    provenance = sign_visit(clinic.doctor_a, clinic.ids["encounter"], clinic.totp())
    versions = _versions(clinic, provenance)
    record = orjson.loads(base64.b64decode(provenance["signature"][0]["data"]))
    record["sha256"] = "0" * 64
    data = base64.b64encode(orjson.dumps(record)).decode()
    altered = {**provenance, "signature": [{**provenance["signature"][0], "data": data}]}
    result = verify(altered, versions)
    assert not result.valid and any("other content" in r for r in result.reasons)
    fewer = {**provenance, "target": provenance["target"][:-1]}
    result = verify(fewer, versions)
    assert not result.valid and any("not a target" in r for r in result.reasons)
    assert verify(provenance, versions).valid


def test_a_totp_step_confirms_once(clinic: Clinic) -> None:
    code = clinic.code()
    sign_visit(clinic.doctor_a, clinic.ids["encounter"], clinic.totp(code=code))
    before = clinic.snapshot()
    with pytest.raises(Forbidden, match="already used"):
        sign_visit(clinic.doctor_a, clinic.ids["encounter"], clinic.totp(code=code))
    assert clinic.snapshot() == before
    wrong = "000000" if clinic.code(1) != "000000" else "111111"
    with pytest.raises(Forbidden, match="Wrong authenticator code"):
        sign_visit(clinic.doctor_a, clinic.ids["encounter"], clinic.totp(code=wrong))
    assert clinic.snapshot() == before
    sign_visit(clinic.doctor_a, clinic.ids["encounter"], clinic.totp(1))  # the next step
    assert clinic.snapshot()[0] == before[0] + 1


def test_a_doctor_of_another_facility_cannot_sign(clinic: Clinic) -> None:
    ids = clinic.ids
    before = clinic.snapshot()
    with pytest.raises(Forbidden):  # no relationship with the patient at all
        sign_visit(clinic.doctor_b, ids["encounter"], clinic.pkcs12())
    # with the patient's consent B reads the record, and still does not sign A's visit
    citizen = clinic.platform.for_caller(citizen_principal("0912345678", ids["patient"]))
    code = create_share(citizen, ids["patient"]).code
    doctor_b = clinic.platform.for_caller(clinic.doctor_b.principal)  # decisions are cached
    redeem_share(doctor_b, code)
    assert doctor_b.read("Encounter", ids["encounter"]).id == ids["encounter"]
    during = clinic.snapshot()
    with pytest.raises(Forbidden, match="only its own clinicians sign it"):
        sign_visit(doctor_b, ids["encounter"], clinic.pkcs12())
    assert clinic.snapshot() == during != before
    # nor a receptionist of A, nor A's doctor with someone else's credentials
    receptionist = clinic.platform.for_caller(staff(clinic.engine, "le.tan", "receptionist", A))
    with pytest.raises(Forbidden, match="roles"):
        sign_visit(receptionist, ids["encounter"], clinic.pkcs12())
    with pytest.raises(Forbidden, match="own credentials"):
        sign_visit(clinic.doctor_a, ids["encounter"], clinic.pkcs12(account="bs.khac"))
    assert clinic.snapshot() == during


def test_signed_versions_are_frozen_for_everyone(clinic: Clinic) -> None:
    ids = clinic.ids
    sign_visit(clinic.doctor_a, ids["encounter"], clinic.pkcs12())
    obs = clinic.content("Observation", ids["obs"])
    changed = {**obs, "valueQuantity": {"value": 75, "unit": "/min"}}
    before = clinic.snapshot()
    for repo in (clinic.doctor_a, clinic.system_a, clinic.platform):
        with pytest.raises(Forbidden, match="signed content is frozen; write an amendment"):
            repo.update(changed, "Observation", ids["obs"])
        with pytest.raises(Forbidden, match="frozen"):
            repo.delete("Encounter", ids["encounter"])
    assert clinic.snapshot() == before
    # what was not signed is written as ever, and a new resource may join the visit
    note = {**clinic.content("Patient", ids["patient"]), "gender": "female"}
    assert clinic.system_a.update(note, "Patient", ids["patient"]).status == 200


def test_an_amendment_replaces_a_signed_version_and_both_signatures_verify(clinic: Clinic) -> None:
    ids = clinic.ids
    first = sign_visit(clinic.doctor_a, ids["encounter"], clinic.totp())
    obs = clinic.content("Observation", ids["obs"])
    corrected = {**obs, "valueQuantity": {"value": 75, "unit": "/min"}}
    done = amend(clinic.doctor_a, corrected, "Nhập nhầm nhịp tim", clinic.pkcs12())
    assert done.resource["meta"]["versionId"] == "2"
    second = done.provenance
    assert second["activity"]["coding"][0]["code"] == "amend"
    assert second["reason"] == [{"text": "Nhập nhầm nhịp tim"}]
    assert second["entity"] == [
        {"role": "revision", "what": {"reference": f"Observation/{ids['obs']}/_history/1"}}
    ]
    assert f"Observation/{ids['obs']}/_history/2" in {t["reference"] for t in second["target"]}
    for signed in (first, second):
        result = verify_signature(clinic.doctor_a, signed["id"])
        assert result.valid, result.reasons
    history, total = clinic.doctor_a.history("Observation", ids["obs"], None, 10, 0)
    assert total == 2 and sorted(r.version_id for r in history) == [1, 2]
    assert clinic.doctor_a.read("Provenance", first["id"]).content is not None
    with pytest.raises(Forbidden, match="frozen"):  # the amendment is signed, so frozen too
        clinic.doctor_a.update({**corrected, "status": "amended"}, "Observation", ids["obs"])


def test_an_amendment_needs_a_signed_version_a_change_and_a_reason(clinic: Clinic) -> None:
    ids = clinic.ids
    obs = clinic.content("Observation", ids["obs"])
    corrected = {**obs, "valueQuantity": {"value": 75, "unit": "/min"}}
    with pytest.raises(InvalidRequest, match="not signed"):
        amend(clinic.doctor_a, corrected, "lý do", clinic.pkcs12())
    sign_visit(clinic.doctor_a, ids["encounter"], clinic.pkcs12())
    with pytest.raises(InvalidRequest, match="reason"):
        amend(clinic.doctor_a, corrected, " ", clinic.pkcs12())
    with pytest.raises(InvalidRequest, match="changes nothing"):
        amend(clinic.doctor_a, obs, "lý do", clinic.pkcs12())
    before = clinic.snapshot()
    with pytest.raises(Forbidden):
        amend(clinic.doctor_b, corrected, "lý do", clinic.pkcs12())
    assert clinic.snapshot() == before


def test_the_visit_holds_only_what_its_facility_wrote_for_it(clinic: Clinic) -> None:
    ids = clinic.ids
    with clinic.store.begin() as tx:
        visit = load_visit(clinic.platform, tx, ids["encounter"])
    assert {(r.resource_type, r.id) for r in visit.resources} == {
        ("Encounter", ids["encounter"]),
        ("Observation", ids["obs"]),
        ("Condition", ids["condition"]),
    }
    assert visit.facility == "79001" and visit.patient_id == ids["patient"]


def test_the_pages_see_each_visits_signatures_and_only_signatures(clinic: Clinic) -> None:
    ids = clinic.ids
    assert signatures(clinic.doctor_a, []) == {}
    assert signatures(clinic.doctor_a, [ids["encounter"]]) == {}
    first = sign_visit(clinic.doctor_a, ids["encounter"], clinic.totp())
    second = sign_visit(clinic.doctor_a, ids["encounter"], clinic.pkcs12())
    # a Provenance of another system with the signature type but no signing activity
    clinic.system_a.create(
        {
            "resourceType": "Provenance",
            "target": [{"reference": f"Encounter/{ids['encounter']}"}],
            "recorded": "2026-07-01T08:00:00+07:00",
            "activity": {"coding": [{"system": SIGNATURE_ACTIVITY + "-other", "code": "sign"}]},
            "agent": [{"who": {"display": "HIS"}}],
            "signature": [{**first["signature"][0]}],
        },
        "Provenance",
    )
    found = signatures(clinic.doctor_a, [ids["encounter"], ids["encounter"], "not-a-visit"])
    assert list(found) == [ids["encounter"]]
    assert [p["id"] for p in found[ids["encounter"]]] == [first["id"], second["id"]]


def test_a_signature_part_reads_as_the_form_writes_it() -> None:
    follow_up = {"resourceType": "Appointment", "start": "2027-01-05T08:00:00+07:00"}
    assert describe(follow_up) == ("Follow-up date", "05/01/2027")
    assert describe({"resourceType": "Appointment"}) == ("Follow-up date", "")
    pressure = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "valueQuantity": {"value": value, "unit": "mm[Hg]"},
            }
            for code, value in (("8480-6", 150), ("8462-4", 95))
        ],
    }
    assert describe(pressure) == ("Blood pressure", "150/95 mmHg")
