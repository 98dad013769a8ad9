"""``MedicationRequest/$prescribe``: issuing, the checks against the lifelong record, the code,
and every way to write or forge a prescription that must be refused (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from sokhoe.access.db import access_engine
from sokhoe.clinic.signing import TotpConfirmation, sign_visit
from sokhoe.clinic.verify import verify_signature
from sokhoe.errors import Conflict, Forbidden, InvalidRequest, NotFound
from sokhoe.fhir.resources import parse_instant
from sokhoe.mpi.identifiers import PRACTITIONER
from sokhoe.operations.prescribe import run_cancel, run_prescribe
from sokhoe.prescribing.cancel import OWNS
from sokhoe.prescribing.code import CODE_SYSTEM
from sokhoe.prescribing.issue import CHECK_SYSTEM
from sokhoe.prescribing.national.outbox import rows as outbox_rows
from sokhoe.prescribing.prescribe import PrescriptionRefused
from sokhoe.store.sql import SqlStore
from tests.api_helpers import client_auth
from tests.conftest import BASE, module_store
from tests.prescribing.rx_world import A, B, C, RxWorld, line, make_rx_world, parameters, years_ago


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rx(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RxWorld]:
    folder = tmp_path_factory.mktemp("rx")
    store: SqlStore = module_store(request, folder, "rx")
    yield make_rx_world(folder, BASE, store if request.param == "postgres" else None)
    store.close()


def now() -> datetime:
    return datetime.now(UTC)


def count(rx: RxWorld, rtype: str) -> int:
    query = rx.platform.parse_query(rtype, [("_summary", "count")])
    return rx.platform.search(query).total or 0


def group(rx: RxWorld, code: str) -> list[dict[str, Any]]:
    query = rx.platform.parse_query(
        "MedicationRequest", [("group-identifier", f"{CODE_SYSTEM}|{code}")]
    )
    return [m.content for m in rx.platform.search(query).matches if m.content]


def test_a_prescription_is_issued_with_one_code_for_its_lines(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Lê Thị Hoa")
    doctor = rx.doctor("bs.an", A)
    issued = run_prescribe(
        doctor,
        parameters(pid, eid, [line("PARACETAMOL-500"), line("AMLODIPIN-5", per_day=1, days=7)]),
        now(),
    )
    assert re.fullmatch(rf"{A}[0-9a-z]{{7}}-C", issued.code) and issued.kind == "C"
    lines = group(rx, issued.code)
    assert len(lines) == 2 and issued.issues == []
    by_drug = {r["medicationCodeableConcept"]["coding"][0]["code"]: r for r in lines}
    para = by_drug["PARACETAMOL-500"]
    assert para["dispenseRequest"]["quantity"]["value"] == 15  # 1 tablet × 3 a day × 5 days
    assert by_drug["AMLODIPIN-5"]["dispenseRequest"]["quantity"]["value"] == 7
    validity = para["dispenseRequest"]["validityPeriod"]
    assert parse_instant(validity["end"]) - parse_instant(validity["start"]) == timedelta(days=5)
    assert para["dispenseRequest"]["expectedSupplyDuration"]["code"] == "d"
    assert para["encounter"]["reference"] == f"Encounter/{eid}"
    assert para["status"] == "active" and para["intent"] == "order"
    assert {"system": "http://www.whocc.no/atc", "code": "N02BE01"} in para[
        "medicationCodeableConcept"
    ]["coding"]


def test_the_warning_for_a_medicine_active_from_another_facility(rx: RxWorld) -> None:
    pid, eid_b = rx.person(B, "Phạm Văn Đức")
    rx.diagnose(pid, eid_b, "I10")
    at_b = run_prescribe(
        rx.doctor("bs.b", B),
        parameters(pid, eid_b, [line("AMLODIPIN-5", per_day=1, days=30)]),
        now(),
    )
    eid_a = "visit-a-" + pid
    rx.platform.update(rx.visit(pid, eid_a, A), "Encounter", eid_a)
    doctor = rx.doctor("bs.an", A)
    body = parameters(pid, eid_a, [line("AMLODIPIN-5", per_day=1, days=10)])
    before = (count(rx, "MedicationRequest"), count(rx, "DetectedIssue"))
    with pytest.raises(PrescriptionRefused) as refused:
        run_prescribe(doctor, body, now())
    (warning,) = refused.value.outcome["issue"]
    assert warning["severity"] == "warning"
    assert "active from a prescription of Bệnh viện Đa khoa Đống Đa" in warning["diagnostics"]
    assert (count(rx, "MedicationRequest"), count(rx, "DetectedIssue")) == before
    overridden = parameters(
        pid, eid_a, [line("AMLODIPIN-5", per_day=1, days=10)], {0: "Bệnh viện B đã ngừng thuốc"}
    )
    issued = run_prescribe(doctor, overridden, now())
    (request,) = issued.requests
    (issue,) = issued.issues
    assert request["detectedIssue"] == [{"reference": f"DetectedIssue/{issue['id']}"}]
    assert {"system": CHECK_SYSTEM, "code": "duplicate-therapy"} in issue["code"]["coding"]
    assert issue["mitigation"][0]["action"]["text"] == "Bệnh viện B đã ngừng thuốc"
    implicated = {i["reference"] for i in issue["implicated"]}
    assert implicated == {
        f"MedicationRequest/{request['id']}",
        f"MedicationRequest/{at_b.requests[0]['id']}",
    }
    assert "Bệnh viện Đa khoa Đống Đa" in issue["detail"]


def test_blocking_rules_refuse_the_whole_prescription_and_write_nothing(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Ngô Văn Nam")
    doctor = rx.doctor("bs.an", A)
    before = (count(rx, "MedicationRequest"), count(rx, "DetectedIssue"))
    cases = [
        ([line("PARACETAMOL-500", days=31)], "more than the 30 allowed"),
        ([line("MORPHIN-10", days=3)], "inpatient beds"),
        ([line("PARACETAMOL-500"), line("DIAZEPAM-5", days=5)], "prescription of their own"),
    ]
    for lines, reason in cases:
        with pytest.raises(PrescriptionRefused) as refused:
            run_prescribe(doctor, parameters(pid, eid, lines), now())
        assert any(reason in i["diagnostics"] for i in refused.value.outcome["issue"]), reason
        assert refused.value.status == 422
    child, child_visit = rx.person(A, "Bé Na", born=years_ago(2))
    with pytest.raises(PrescriptionRefused, match="weight"):
        run_prescribe(doctor, parameters(child, child_visit, [line("PARACETAMOL-500")]), now())
    with pytest.raises(InvalidRequest, match="drug catalogue"):
        run_prescribe(doctor, parameters(pid, eid, [line("NOT-IN-CATALOGUE")]), now())
    assert (count(rx, "MedicationRequest"), count(rx, "DetectedIssue")) == before
    weighed = run_prescribe(
        doctor,
        parameters(
            child,
            child_visit,
            [line("PARACETAMOL-500", per_dose=0.5)],
            weight={"valueQuantity": {"value": 12, "unit": "kg"}},
        ),
        now(),
    )
    (per_kg,) = weighed.issues
    assert per_kg["severity"] == "low" and "/kg" in per_kg["detail"]


def test_narcotics_at_a_hospital_with_beds_within_seven_days(rx: RxWorld) -> None:
    pid, eid = rx.person(C, "Trịnh Văn Long")
    doctor = rx.doctor("bs.c", C)
    issued = run_prescribe(doctor, parameters(pid, eid, [line("MORPHIN-10", days=7)]), now())
    assert issued.code.startswith(C) and issued.code.endswith("-N")
    with pytest.raises(PrescriptionRefused, match="7 allowed"):
        run_prescribe(doctor, parameters(pid, eid, [line("MORPHIN-10", days=8)]), now())


def test_who_may_not_prescribe(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Đỗ Thị Lan")
    body = parameters(pid, eid, [line("PARACETAMOL-500")])
    before = count(rx, "MedicationRequest")
    with pytest.raises(Forbidden, match="no current relationship"):  # another facility's doctor
        run_prescribe(rx.doctor("bs.c", C), body, now())
    c_visit = "visit-c-" + pid  # even in a visit of their own: the record is not open to them
    rx.platform.update(rx.visit(pid, c_visit, C), "Encounter", c_visit)
    with pytest.raises(NotFound):  # and A's visit is not theirs to prescribe in
        run_prescribe(rx.doctor("bs.c", C), parameters(pid, eid, [line("PARACETAMOL-500")]), now())
    with pytest.raises(Forbidden):
        run_prescribe(rx.doctor("ds.an", A, role="pharmacist"), body, now())
    with pytest.raises(Forbidden):
        run_prescribe(rx.doctor("tieptan", A, role="receptionist"), body, now())
    assert count(rx, "MedicationRequest") == before


@pytest.fixture(scope="module")
def api(rx: RxWorld) -> Iterator[TestClient]:
    with TestClient(rx.world.app, base_url=BASE) as client:
        yield client


def test_a_connected_system_prescribes_over_http_and_cannot_forge_one(
    rx: RxWorld, api: TestClient
) -> None:
    pid, eid = rx.person(C, "Hà Văn Sơn")
    auth = client_auth(api, ["system/*.cruds"], C)
    rx.platform.update(
        {
            "resourceType": "Practitioner",
            "id": "pr-c",
            "identifier": [{"system": PRACTITIONER, "value": "000123/HNO-CCHN"}],
            "name": [{"text": "BS. Hoàng Thị Em"}],
        },
        "Practitioner",
        "pr-c",
    )
    requester = {"requester": {"reference": "Practitioner/pr-c", "display": "BS. Hoàng Thị Em"}}
    r = api.post(
        "/fhir/MedicationRequest/$prescribe",
        json=parameters(pid, eid, [line("PARACETAMOL-500", **requester)]),
        headers=auth,
    )
    assert r.status_code == 201, r.text
    issued = r.json()["entry"][0]["resource"]
    code = issued["groupIdentifier"]["value"]
    assert issued["requester"]["reference"] == "Practitioner/pr-c"
    # the record says which system sent it, and for which prescriber
    query = rx.platform.parse_query("Provenance", [("target", f"MedicationRequest/{issued['id']}")])
    (provenance,) = [m.content for m in rx.platform.search(query).matches if m.content]
    agents = {a["type"]["coding"][0]["code"]: a["who"] for a in provenance["agent"]}
    assert agents["author"]["reference"] == "Practitioner/pr-c"
    assert agents["enterer"]["identifier"]["value"].startswith("c-")  # its client id
    # queued for the national prescription system in the same transaction, once
    (queued,) = outbox_rows(access_engine(rx.world.app.state.store), [code])
    assert queued.kind == "prescription" and queued.practitioner == "000123/HNO-CCHN"
    found = api.get(f"/fhir/MedicationRequest?group-identifier={CODE_SYSTEM}|{code}", headers=auth)
    assert found.status_code == 200 and found.json()["total"] == 1
    refused = api.post(
        "/fhir/MedicationRequest/$prescribe",
        json=parameters(pid, eid, [line("PARACETAMOL-500", days=40, **requester)]),
        headers=auth,
    )
    assert refused.status_code == 422 and refused.json()["resourceType"] == "OperationOutcome"
    # a plain create, an update, a delete, a transaction: none may write a prescription
    before = count(rx, "MedicationRequest")
    forged = {
        **line("PARACETAMOL-500"),
        "subject": {"reference": f"Patient/{pid}"},
        "groupIdentifier": {"system": CODE_SYSTEM, "value": f"{C}abcdefg-C"},
    }
    assert api.post("/fhir/MedicationRequest", json=forged, headers=auth).status_code == 403
    changed = {
        **issued,
        "dispenseRequest": {**issued["dispenseRequest"], "quantity": {"value": 500}},
    }
    assert (
        api.put(f"/fhir/MedicationRequest/{issued['id']}", json=changed, headers=auth).status_code
        == 403
    )
    assert api.delete(f"/fhir/MedicationRequest/{issued['id']}", headers=auth).status_code == 403
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": forged, "request": {"method": "POST", "url": "MedicationRequest"}}],
    }
    assert api.post("/fhir", json=bundle, headers=auth).status_code == 403
    assert count(rx, "MedicationRequest") == before
    no_requester = api.post(
        "/fhir/MedicationRequest/$prescribe",
        json=parameters(pid, eid, [line("PARACETAMOL-500")]),
        headers=auth,
    )
    assert no_requester.status_code == 400 and "requester" in no_requester.text


def test_cancel_and_replace_in_one_transaction(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Vũ Thị Mai")
    doctor = rx.doctor("bs.an", A)
    first = run_prescribe(doctor, parameters(pid, eid, [line("PARACETAMOL-500", days=5)]), now())
    with pytest.raises(InvalidRequest, match="why"):
        run_prescribe(
            doctor,
            parameters(
                pid, eid, [line("PARACETAMOL-500", days=3)], replaces={"valueString": first.code}
            ),
            now(),
        )
    # the same medicine again: no duplicate-therapy warning against the one it replaces
    second = run_prescribe(
        doctor,
        parameters(
            pid,
            eid,
            [line("PARACETAMOL-500", days=3)],
            replaces={"valueString": first.code.upper()},  # codes match whatever the case
            reason={"valueString": "Giảm số ngày dùng"},
        ),
        now(),
    )
    assert second.code != first.code and second.issues == []
    (old,) = group(rx, first.code)
    assert old["status"] == "cancelled" and old["statusReason"]["text"] == "Giảm số ngày dùng"
    (new,) = second.requests
    assert new["priorPrescription"] == {"reference": f"MedicationRequest/{old['id']}"}
    with pytest.raises(Conflict, match="no longer active"):
        run_cancel(
            doctor,
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "code", "valueString": first.code},
                    {"name": "reason", "valueString": "nhầm"},
                ],
            },
        )
    other, other_visit = rx.person(A, "Người khác")
    before = count(rx, "MedicationRequest")
    with pytest.raises(InvalidRequest, match="another patient"):
        run_prescribe(
            doctor,
            parameters(
                other,
                other_visit,
                [line("PARACETAMOL-500")],
                replaces={"valueString": second.code},
                reason={"valueString": "x"},
            ),
            now(),
        )
    with pytest.raises(NotFound):  # another facility cannot cancel, nor learn the code exists
        run_cancel(
            rx.doctor("bs.c", C),
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "code", "valueString": second.code},
                    {"name": "reason", "valueString": "thử"},
                ],
            },
        )
    assert count(rx, "MedicationRequest") == before
    assert all(r["status"] == "active" for r in group(rx, second.code))


def test_a_signed_prescription_is_cancelled_and_its_signature_still_holds(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Đinh Văn Hùng")
    doctor = rx.doctor("bs.an", A)
    issued = run_prescribe(doctor, parameters(pid, eid, [line("PARACETAMOL-500")]), now())
    enc = dict(rx.platform.read("Encounter", eid).content or {})
    rx.platform.update({**enc, "status": "finished"}, "Encounter", eid)
    engine = rx.world.app.state.tokens.engine
    code = pyotp.TOTP(rx.world.totp_secret).now()
    provenance = sign_visit(doctor, eid, TotpConfirmation(engine, "bs.an", code))
    signed = {t["reference"] for t in provenance["target"]}
    (line_id,) = [r["id"] for r in issued.requests]
    assert any(ref.startswith(f"MedicationRequest/{line_id}/_history/") for ref in signed)
    # its content is frozen: no operation may change what was signed
    with pytest.raises(Forbidden):
        with doctor.operation(
            "prescribe", resource_type="MedicationRequest", interactions=["update"], owns=OWNS
        ) as tx:
            current = rx.platform.read("MedicationRequest", line_id).content or {}
            changed = {
                **current,
                "dispenseRequest": {**current["dispenseRequest"], "quantity": {"value": 99}},
            }
            changed.pop("meta", None)
            doctor.update(changed, "MedicationRequest", line_id, tx=tx)
    cancelled = run_cancel(
        doctor,
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "code", "valueString": issued.code},
                {"name": "reason", "valueString": "Người bệnh dị ứng, đổi thuốc"},
            ],
        },
    )
    assert [c["status"] for c in cancelled] == ["cancelled"]
    assert verify_signature(rx.platform, provenance["id"]).valid
