"""HL7 v2 messages → FHIR, on every store backend: ADT, ORU, ORM, A40, faults, idempotency.

The messages are the files under ``hl7_samples/`` (synthetic people, Vietnamese text); they
are applied through ``Hl7Processor.handle`` exactly as the MLLP listener and the HTTP endpoint
do (the transports have their own tests).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import platform_repository
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.hl7v2.mllp import as_bytes
from sokhoe.interop.hl7v2.processor import Hl7Processor
from sokhoe.mpi.identifiers import CCCD, FACILITY, mrn_system
from sokhoe.store.ports import FhirStore
from sokhoe.store.sql.access_schema import audit_event

SAMPLES = Path(__file__).parent / "hl7_samples"
FACILITY_CODE = "79001"
BASE = "http://testserver/fhir"


def sample(name: str) -> bytes:
    return as_bytes((SAMPLES / f"{name}.hl7").read_text(encoding="utf-8"))


def edited(name: str, old: str, new: str) -> bytes:
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    if old not in text:
        raise AssertionError(f"{old!r} not in {name}")
    return as_bytes(text.replace(old, new))


def conceptmap() -> dict[str, Any]:
    path = resources.files("sokhoe.interop.hl7v2") / "samples" / "conceptmap-79001-lab.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def prepare(store: FhirStore) -> FhirRepository:
    """The facility's Organization and its lab ConceptMap, as the registry would hold them."""
    repo = platform_repository(store, BASE)
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": "org-79001",
        "name": "Bệnh viện Đa khoa Thử nghiệm",
        "identifier": [{"use": "official", "system": FACILITY, "value": FACILITY_CODE}],
    }
    repo.update(org, "Organization", org["id"])
    cm = conceptmap()
    repo.update(cm, "ConceptMap", cm["id"])
    return repo


def versions(store: FhirStore) -> int:
    """Every stored version of every resource: a rejected message must not add one."""
    with store.begin() as tx:
        return tx.history(None, None, None, 1, 0)[1]


def msa(ack: str) -> list[str]:
    line = next(s for s in ack.split("\r") if s.startswith("MSA|"))
    return line.split("|")


def err(ack: str) -> str:
    return next((s for s in ack.split("\r") if s.startswith("ERR|")), "")


def patients_by(repo: FhirRepository, system: str, value: str) -> list[dict[str, Any]]:
    q = repo.parse_query("Patient", [("identifier", f"{system}|{value}")], strict=True)
    return [m.content or {} for m in repo.search(q).matches]


def search(repo: FhirRepository, rtype: str, params: list[tuple[str, str]]) -> list[Any]:
    return [m.content for m in repo.search(repo.parse_query(rtype, params, strict=True)).matches]


@pytest.fixture
def processor(store: FhirStore) -> Hl7Processor:
    prepare(store)
    return Hl7Processor(store, BASE)


def test_admit_update_discharge_builds_one_patient_and_one_visit(
    store: FhirStore, processor: Hl7Processor
) -> None:
    repo = platform_repository(store, BASE)
    for name in ("adt_a04", "adt_a01", "adt_a08", "adt_a03"):
        ack = processor.handle(sample(name), source="127.0.0.1")
        assert msa(ack)[1] == "AA", ack
    people = patients_by(repo, CCCD, "079185001234")
    assert len(people) == 1
    person = people[0]
    assert person["name"][0]["family"] == "Trần"
    assert person["name"][0]["given"] == ["Thị", "Mai", "Hoa"]
    assert person["name"][0]["text"] == "Trần Thị Mai Hoa"
    assert person["birthDate"] == "1985-04-12"
    assert person["gender"] == "female"
    # A08 replaced the address and phone; the record number and BHYT card stayed
    assert person["address"][0]["line"] == ["45 Nguyễn Huệ"]
    assert person["address"][0]["city"] == "Phường Sài Gòn"
    assert person["telecom"] == [{"system": "phone", "value": "0912999888", "use": "mobile"}]
    systems = {i["system"]: i["value"] for i in person["identifier"]}
    assert systems[mrn_system(FACILITY_CODE)] == "BN-100234"
    assert systems["https://fhir.sokhoe.vn/sid/bhyt"] == "DN4797935012345"
    assert patients_by(repo, mrn_system(FACILITY_CODE), "BN-100234")[0]["id"] == person["id"]

    visits = search(repo, "Encounter", [("subject", f"Patient/{person['id']}")])
    by_number = {v["identifier"][0]["value"]: v for v in visits}
    assert set(by_number) == {"V-2025-0001", "V-2025-0002"}
    stay = by_number["V-2025-0002"]
    assert stay["status"] == "finished"
    assert stay["class"]["code"] == "IMP"
    assert stay["period"] == {
        "start": "2025-03-11T09:00:00+07:00",
        "end": "2025-03-15T14:30:00+07:00",
    }
    assert stay["serviceProvider"] == {"reference": "Organization/org-79001"}
    assert by_number["V-2025-0001"]["class"]["code"] == "AMB"


def test_results_and_orders_land_in_the_patients_record(
    store: FhirStore, processor: Hl7Processor
) -> None:
    repo = platform_repository(store, BASE)
    for name in ("adt_a04", "adt_a01", "orm_o01", "oru_r01"):
        assert msa(processor.handle(sample(name)))[1] == "AA"
    person = patients_by(repo, CCCD, "079185001234")[0]
    ref = f"Patient/{person['id']}"
    observations = search(repo, "Observation", [("subject", ref)])
    assert len(observations) == 4
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    glucose = by_code["GLU"]
    assert glucose["code"]["coding"][1] == {
        "system": "http://loinc.org",
        "code": "1558-6",
        "display": "Fasting glucose [Moles/volume] in Serum or Plasma",
    }
    assert glucose["code"]["coding"][0]["display"] == "Glucose máu lúc đói"
    assert glucose["valueQuantity"] == {
        "value": 6.8,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert glucose["interpretation"][0]["coding"][0]["code"] == "H"
    assert glucose["referenceRange"][0]["low"]["value"] == 3.9
    assert glucose["note"] == [{"text": "Bệnh nhân nhịn ăn 8 giờ, kết quả cao hơn bình thường."}]
    assert glucose["effectiveDateTime"] == "2025-03-12T07:00:00+07:00"
    assert by_code["NX"]["valueString"].startswith("Đường huyết tăng")
    assert len(by_code["NX"]["code"]["coding"]) == 1  # no LOINC mapping for this local code
    # search by the LOINC code finds the local result
    assert len(search(repo, "Observation", [("code", "http://loinc.org|4548-4")])) == 1

    reports = search(repo, "DiagnosticReport", [("subject", ref)])
    assert len(reports) == 1
    report = reports[0]
    assert report["status"] == "final"
    assert sorted(r["reference"] for r in report["result"]) == sorted(
        f"Observation/{o['id']}" for o in observations
    )
    orders = search(repo, "ServiceRequest", [("subject", ref)])
    assert len(orders) == 1
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{orders[0]['id']}"}]
    assert orders[0]["status"] == "active"
    assert orders[0]["requester"] == {"display": "Phạm Minh Quang"}
    assert orders[0]["code"]["coding"][1]["code"] == "24323-8"
    visit = search(repo, "Encounter", [("identifier", "V-2025-0002")])[0]
    assert glucose["encounter"] == {"reference": f"Encounter/{visit['id']}"}


def test_a_resent_message_gets_the_same_ack_and_writes_nothing(
    store: FhirStore, processor: Hl7Processor
) -> None:
    processor.handle(sample("adt_a04"))
    first = processor.handle(sample("oru_r01"))
    before = versions(store)
    again = processor.handle(sample("oru_r01"))
    assert again == first
    assert versions(store) == before
    # the same content under a new control ID updates in place: no duplicates, no versions
    renamed = processor.handle(edited("oru_r01", "|ORU-0001|", "|ORU-0002|"))
    assert msa(renamed)[1] == "AA"
    assert versions(store) == before


def test_a_corrected_result_updates_the_observation(
    store: FhirStore, processor: Hl7Processor
) -> None:
    repo = platform_repository(store, BASE)
    processor.handle(sample("adt_a04"))
    processor.handle(sample("oru_r01"))
    fixed = edited("oru_r01", "||6.8|mmol/L", "||6.3|mmol/L")
    fixed = fixed.replace(b"|ORU-0001|", b"|ORU-0003|")
    assert msa(processor.handle(fixed))[1] == "AA"
    found = search(repo, "Observation", [("identifier", "KQ-5566-1")])
    assert len(found) == 1
    assert found[0]["valueQuantity"]["value"] == 6.3
    assert found[0]["meta"]["versionId"] == "2"


BROKEN = [
    pytest.param(
        "adt_a04",
        "079185001234^^^CCCD^NNVNM~BN-100234^^^79001^MR~DN4797935012345^^^BHYT^HC",
        "",
        "AE",
        "PID^1^3",
        id="missing PID-3",
    ),
    pytest.param("adt_a04", "|19850412|F|", "|19851342|F|", "AE", "PID^1^7", id="bad PID-7"),
    pytest.param(
        "adt_a04", "ADT^A04^ADT_A01", "ADT^A99^ADT_A01", "AR", "MSH^1^9", id="unknown event"
    ),
    pytest.param("adt_a04", "ADT^A04^ADT_A01", "QRY^Q01", "AR", "MSH^1^9", id="unknown type"),
    pytest.param("adt_a04", "|HIS|79001|", "|HIS|01001|", "AR", "MSH^1^4", id="unknown facility"),
    pytest.param("oru_r01", "|6.8|", "|6.8|", "AE", "PID^1^3", id="ORU for unknown patient"),
    pytest.param("adt_a04", "|O|KHAM", "|Z|KHAM", "AE", "PV1^1^2", id="bad patient class"),
    pytest.param(
        "adt_a04", "079185001234^^^CCCD", "07918500123^^^CCCD", "AE", "PID^1^3", id="bad CCCD"
    ),
    pytest.param("adt_a04", "DN4797935012345", "DN479793501234X", "AE", "PID^1^3", id="bad BHYT"),
]


@pytest.mark.parametrize(("name", "old", "new", "code", "where"), BROKEN)
def test_a_broken_message_is_refused_naming_the_fault_and_changes_nothing(
    store: FhirStore, processor: Hl7Processor, name: str, old: str, new: str, code: str, where: str
) -> None:
    message = edited(name, old, new)
    before = versions(store)
    ack = processor.handle(message)
    assert msa(ack)[1] == code, ack
    assert err(ack).split("|")[2].startswith(where), ack
    assert err(ack).split("|")[8], "ERR-8 must explain the fault to a person"
    assert versions(store) == before
    # nothing was remembered either: the corrected message is applied, not answered from cache
    if name == "adt_a04":
        assert msa(processor.handle(sample(name)))[1] == "AA"


def test_a_version_2_3_nack_uses_err_1(store: FhirStore, processor: Hl7Processor) -> None:
    message = edited("orm_o01", "|ORM^O01^ORM_O01|", "|ORM^O01|")
    ack = processor.handle(message)  # the patient is unknown
    assert msa(ack)[1] == "AE"
    assert msa(ack)[3].startswith("No patient")
    assert err(ack).startswith("ERR|PID^1^3^204&Unknown key identifier&HL70357")


def test_undecodable_bytes_are_rejected(store: FhirStore, processor: Hl7Processor) -> None:
    message = sample("adt_a04").replace("Trần".encode(), "Tr\xe1n".encode("latin-1"))
    before = versions(store)
    ack = processor.handle(message)
    assert msa(ack)[1:3] == ["AR", "A04-0001"]
    assert "UTF-8" in ack
    assert versions(store) == before


def test_a_message_failing_midway_rolls_back_everything(
    store: FhirStore, processor: Hl7Processor
) -> None:
    """The second OBX carries text where OBX-2 says number: neither the report nor the first
    observation may stay."""
    processor.handle(sample("adt_a04"))
    before = versions(store)
    ack = processor.handle(edited("oru_r01", "|7.2|", "|bảy|"))
    assert msa(ack)[1] == "AE"
    assert err(ack).split("|")[2] == "OBX^2^5"
    assert versions(store) == before


def test_a40_merges_the_old_record_into_the_survivor(
    store: FhirStore, processor: Hl7Processor
) -> None:
    repo = platform_repository(store, BASE)
    for name in ("adt_a04", "adt_a04_second"):
        assert msa(processor.handle(sample(name)))[1] == "AA"
    survivor = patients_by(repo, mrn_system(FACILITY_CODE), "BN-100234")[0]
    old = patients_by(repo, mrn_system(FACILITY_CODE), "BN-100999")[0]
    ack = processor.handle(sample("adt_a40"))
    assert msa(ack)[1] == "AA", ack
    merged = repo.read("Patient", old["id"]).content or {}
    assert merged["active"] is False
    assert merged["link"] == [
        {"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}
    ]
    # the old record's visit now shows in the survivor's record (searches follow the link)
    visits = search(repo, "Encounter", [("subject", f"Patient/{survivor['id']}")])
    assert {v["identifier"][0]["value"] for v in visits} == {"V-2025-0001", "V-2025-0100"}
    # resent under a new control ID: already done, still AA, nothing new
    before = versions(store)
    again = processor.handle(edited("adt_a40", "|A40-0001|", "|A40-0002|"))
    assert msa(again)[1] == "AA"
    assert versions(store) == before


def test_writes_are_audited_as_the_facilitys_interface(
    store: FhirStore, processor: Hl7Processor
) -> None:
    engine = processor.engine
    with engine.connect() as conn:  # the test's own set-up (the registry) is audited too
        before = conn.execute(select(func.coalesce(func.max(audit_event.c.seq), 0))).scalar_one()
    processor.handle(sample("adt_a04"), source="10.1.2.3")
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.agent, audit_event.c.action)
            .where(audit_event.c.seq > before)
            .order_by(audit_event.c.seq)
        ).all()
    assert len(rows) >= 2
    assert {r.agent for r in rows} == {"client:hl7:79001"}
    assert {r.action for r in rows} >= {"operation", "create"}
    assert AuditLog(engine).verify().ok


def _second_facility(store: FhirStore) -> None:
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": "org-01001",
        "name": "Trạm Y tế Phường Ba Đình",
        "identifier": [{"system": FACILITY, "value": "01001"}],
    }
    platform_repository(store, BASE).update(org, "Organization", org["id"])


def test_the_same_person_at_two_facilities_is_one_patient(
    store: FhirStore, processor: Hl7Processor
) -> None:
    _second_facility(store)
    repo = platform_repository(store, BASE)
    assert msa(processor.handle(sample("adt_a04")))[1] == "AA"
    elsewhere = (
        sample("adt_a04")
        .replace(b"|HIS|79001|", b"|HIS|01001|")
        .replace(b"BN-100234^^^79001^MR", b"TYT-55^^^01001^MR")
        .replace(b"V-2025-0001", b"TYT-V-1")
    )
    assert msa(processor.handle(elsewhere))[1] == "AA"
    people = patients_by(repo, CCCD, "079185001234")
    assert len(people) == 1
    numbers = {i["system"]: i["value"] for i in people[0]["identifier"]}
    assert numbers[mrn_system("79001")] == "BN-100234"
    assert numbers[mrn_system("01001")] == "TYT-55"


def test_results_for_a_patient_of_another_facility_are_refused(
    store: FhirStore, processor: Hl7Processor
) -> None:
    """01001 knows the personal ID but never registered the person: the access policy
    refuses its results (AR) and nothing is written."""
    _second_facility(store)
    assert msa(processor.handle(sample("adt_a04")))[1] == "AA"
    foreign = (
        sample("oru_r01")
        .replace(b"|LIS|79001|", b"|LIS|01001|")
        .replace(b"BN-100234^^^79001^MR", b"079185001234^^^CCCD^NNVNM")
    )
    before = versions(store)
    ack = processor.handle(foreign)
    assert msa(ack)[1] == "AR", ack
    assert "no current relationship with facility 01001" in ack
    assert versions(store) == before
