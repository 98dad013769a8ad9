"""The station verifies what residents declared: who sees the waiting items, the signed
decisions (confirm, correct, reject), and every refusal leaving the store as it was."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.access.otp import CITIZEN_SCOPES
from sokhoe.access.principal import Principal
from sokhoe.access.signed import SIGNATURE_ACTIVITY
from sokhoe.clinic.declarations import waiting, waiting_for
from sokhoe.clinic.signing import TotpConfirmation
from sokhoe.clinic.verification import (
    DECISION_EXTENSION,
    Choice,
    SignatureRefused,
    decide,
    decide_many,
)
from sokhoe.clinic.verify import verify_signature
from sokhoe.errors import Conflict, FhirError, Forbidden, InvalidRequest
from sokhoe.portal.selfdeclared import verification
from tests.clinic.clinic_world import PASSWORD, A, World, make_world
from tests.clinic.station import (
    NURSE,
    RESIDENT,
    declare_all,
    declared,
    door,
    make_station,
    resident,
    signer,
    totp_secret,
)
from tests.conftest import BASE


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, BASE)
    make_station(world)
    resident(world)
    return world


def _history(world: World) -> list[tuple[str, str, int]]:
    """Every version of every resource: a refused decision changes nothing here."""
    with world.app.state.store.begin() as tx:
        found, _ = tx.history(None, None, None, 100_000, 0)
    return sorted((r.resource_type, r.id, r.version_id) for r in found)


def _content(world: World, rtype: str, rid: str) -> dict[str, Any]:
    found = world.platform.read(rtype, rid).content
    assert found is not None
    return found


def test_the_ward_station_sees_its_residents_waiting_items_and_a_hospital_its_own(
    world: World,
) -> None:
    lan = declare_all(world, RESIDENT, "lan")
    an = declare_all(world, "p-an", "an")  # p-an lives nowhere known; seen at hospital B
    world.platform.update(
        declared(RESIDENT, "lan-done", "AllergyIntolerance", "confirmed"),
        "AllergyIntolerance",
        "lan-done",
    )
    station = door(world, "bs.an")
    assert station.principal.commune == "00070"  # the registry says A serves the ward
    people = waiting(station)
    assert [p.patient_id for p in people] == [RESIDENT]
    assert people[0].name == "Đỗ Thị Lan"
    assert {(i.resource_type, i.id) for i in people[0].items} == {(t, i) for t, i in lan.items()}
    assert {i.label for i in people[0].items} >= {"Allergy", "Vaccination", "Family history"}
    hospital = door(world, "bs.b")
    assert hospital.principal.commune is None
    assert {i.id for p in waiting(hospital) for i in p.items} == set(an.values())
    assert waiting(door(world, "bs.c")) == []
    # the desk reads no clinical content: nothing to verify
    assert waiting_for(door(world, "tieptan"), RESIDENT) == []
    assert len(waiting_for(door(world, NURSE), RESIDENT)) == 6
    # an item the resident took back (sent the declaration again without it) is not waiting
    taken_back = {
        **_content(world, "Observation", lan["Observation"]),
        "status": "entered-in-error",
    }
    world.platform.update(taken_back, "Observation", lan["Observation"])
    assert len(waiting_for(door(world, NURSE), RESIDENT)) == 5
    with pytest.raises(Conflict, match="taken back"):
        decide(
            door(world, NURSE),
            "Observation",
            lan["Observation"],
            "confirm",
            TotpConfirmation(world.app.state.tokens.engine, NURSE, "000000"),
        )
    # the FHIR API's staff sign-in carries the station's ward too; the desk's does not
    api = TestClient(world.app, base_url=BASE)
    for username, status in ((NURSE, 200), ("tieptan", 403)):
        signed = api.post("/auth/staff/sign-in", json={"username": username, "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        assert api.get(f"/fhir/Patient/{RESIDENT}", headers=bearer).status_code == status


def test_confirm_correct_and_reject_are_each_signed_in_their_own_transaction(
    world: World,
) -> None:
    ids = declare_all(world, RESIDENT, "lan")
    secret = totp_secret(world, NURSE)
    nurse = door(world, NURSE)
    form = signer(world, NURSE, secret, batch=True)  # one code confirms the nurse's form
    outcomes = decide_many(
        nurse,
        [
            Choice("AllergyIntolerance", ids["AllergyIntolerance"], 1, "confirm"),
            Choice("Condition", ids["Condition"], 1, "correct", "E11 đái tháo đường type 2"),
            Choice("Observation", ids["Observation"], 1, "reject"),
            Choice("FamilyMemberHistory", ids["FamilyMemberHistory"], 1, "correct", "I10"),
            Choice("Immunization", ids["Immunization"], 1, "correct", "198 5 trong 1"),
            Choice("Procedure", ids["Procedure"], 1, "confirm"),
        ],
        form,
    )
    assert [o.refused for o in outcomes] == [None] * 6
    allergy = _content(world, "AllergyIntolerance", ids["AllergyIntolerance"])
    assert verification(allergy) == "confirmed"
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    condition = _content(world, "Condition", ids["Condition"])
    assert condition["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10",
        "code": "E11",
        "display": condition["code"]["coding"][0]["display"],
    }
    assert condition["code"]["text"] == "đái tháo đường type 2"
    assert verification(condition) == "confirmed"
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    smoking = _content(world, "Observation", ids["Observation"])
    assert (verification(smoking), smoking["status"]) == ("refuted", "entered-in-error")
    family = _content(world, "FamilyMemberHistory", ids["FamilyMemberHistory"])
    assert (verification(family), family["status"]) == ("confirmed", "completed")
    assert family["condition"][0]["code"]["coding"][0]["code"] == "I10"
    vaccine = _content(world, "Immunization", ids["Immunization"])
    assert verification(vaccine) == "confirmed" and vaccine["primarySource"] is False
    assert vaccine["vaccineCode"] == {
        "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "198"}],
        "text": "5 trong 1",
    }
    # each decision: its own Provenance naming the nurse, the station, the versions
    first = outcomes[0].decided
    assert first is not None
    provenance = first.provenance
    assert provenance["activity"]["coding"][0] == {
        "system": SIGNATURE_ACTIVITY,
        "code": "verify",
        "display": provenance["activity"]["coding"][0]["display"],
    }
    rid = ids["AllergyIntolerance"]
    assert provenance["target"] == [{"reference": f"AllergyIntolerance/{rid}/_history/2"}]
    assert provenance["entity"] == [
        {"role": "revision", "what": {"reference": f"AllergyIntolerance/{rid}/_history/1"}}
    ]
    agent = provenance["agent"][0]
    assert agent["who"]["identifier"]["value"] == NURSE
    assert agent["role"][0]["coding"][0]["code"] == "nurse"
    assert agent["onBehalfOf"] == {
        "reference": f"Organization/org-{A}",
        "display": "Trạm Y tế Phường Hoàn Kiếm",
    }
    assert {"url": DECISION_EXTENSION, "valueCode": "confirm"} in provenance["extension"]
    record = json.loads(base64.b64decode(provenance["signature"][0]["data"]))
    assert record["account"] == NURSE and "code" not in record
    steps = set()
    for outcome in outcomes:
        assert outcome.decided is not None
        check = verify_signature(nurse, str(outcome.decided.provenance["id"]))
        assert check.valid, check.reasons
        steps.add(
            json.loads(base64.b64decode(outcome.decided.provenance["signature"][0]["data"]))[
                "timeStep"
            ]
        )
    assert len(steps) == 1  # one confirmation, six signatures each over its own item
    assert verification(_content(world, "Procedure", ids["Procedure"])) == "confirmed"
    assert waiting_for(nurse, RESIDENT) == []
    # the decided version is frozen: nobody rewrites a confirmed item, the platform neither
    with pytest.raises(Forbidden, match="signed"):
        world.platform.update({**allergy, "code": {"text": "Aspirin"}}, "AllergyIntolerance", rid)


def test_a_hospital_with_a_care_relationship_may_decide(world: World) -> None:
    ids = declare_all(world, "p-an", "an")
    secret = totp_secret(world, "bs.b")
    done = decide(
        door(world, "bs.b"),
        "AllergyIntolerance",
        ids["AllergyIntolerance"],
        "reject",
        signer(world, "bs.b", secret),
    )
    assert verification(done.resource) == "refuted"
    assert done.resource["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert done.provenance["agent"][0]["onBehalfOf"]["reference"] == "Organization/org-01002"


def test_refused_decisions_change_nothing(world: World) -> None:
    lan = declare_all(world, RESIDENT, "lan")
    an = declare_all(world, "p-an", "an")
    facility_allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "lan-recorded",
        "patient": {"reference": f"Patient/{RESIDENT}"},
        "code": {"text": "Aspirin"},
    }
    world.platform.update(facility_allergy, "AllergyIntolerance", "lan-recorded")
    world.platform.update(
        declared(RESIDENT, "lan-old", "Condition", "refuted"), "Condition", "lan-old"
    )
    doctor, nurse, desk = door(world, "bs.an"), door(world, NURSE), door(world, "tieptan")
    secret = world.totp_secret
    nurse_secret = totp_secret(world, NURSE)
    before = _history(world)
    allergy = lan["AllergyIntolerance"]

    def refused(error: type[FhirError], repo: Any, rtype: str, rid: str, **kw: Any) -> str:
        sign = kw.pop("signer", None) or signer(world, repo.principal.subject, nurse_secret)
        with pytest.raises(error) as caught:
            decide(repo, rtype, rid, kw.pop("decision", "confirm"), sign, **kw)
        assert _history(world) == before
        return str(caught.value)

    assert "recorded by a facility" in refused(
        InvalidRequest, nurse, "AllergyIntolerance", "lan-recorded"
    )
    assert "already decided" in refused(Conflict, nurse, "Condition", "lan-old")
    assert "changed after you looked" in refused(
        Conflict, nurse, "AllergyIntolerance", allergy, version=7
    )
    assert "scopes do not allow" in refused(
        Forbidden,
        desk,
        "AllergyIntolerance",
        allergy,
        signer=signer(world, "tieptan", nurse_secret),
    )
    # another facility's doctor may not; nor the station for someone who is not its resident
    assert "no current relationship" in refused(
        Forbidden,
        door(world, "bs.c"),
        "AllergyIntolerance",
        allergy,
        signer=signer(world, "bs.c", nurse_secret),
    )
    assert refused(
        Forbidden,
        doctor,
        "AllergyIntolerance",
        an["AllergyIntolerance"],
        signer=signer(world, "bs.an", secret),
    )
    # signing with someone else's code, or a wrong one
    assert "own credentials" in refused(
        Forbidden, doctor, "AllergyIntolerance", allergy, signer=signer(world, NURSE, nurse_secret)
    )
    wrong = TotpConfirmation(world.app.state.tokens.engine, NURSE, "000000")
    assert "not confirmed" in refused(
        SignatureRefused, nurse, "AllergyIntolerance", allergy, signer=wrong
    )
    assert "correction" in refused(
        InvalidRequest, nurse, "AllergyIntolerance", allergy, decision="correct", correction=" "
    )
    herself = world.platform.for_caller(
        Principal("citizen", "0911222333", "Lan", scopes=CITIZEN_SCOPES, patient_ids=(RESIDENT,))
    )
    assert refused(Forbidden, herself, "AllergyIntolerance", allergy)  # nobody confirms themselves
    assert "not something a citizen declares" in refused(
        InvalidRequest, nurse, "Encounter", "enc-b"
    )
    # a spent code stops the whole form: nothing of it is written
    code = signer(world, NURSE, nurse_secret, 1)
    decide(nurse, "Condition", lan["Condition"], "confirm", code)
    after = _history(world)
    outcomes = decide_many(
        nurse,
        [
            Choice("AllergyIntolerance", allergy, 1, "confirm"),
            Choice("Observation", lan["Observation"], 1, "confirm"),
        ],
        signer(world, NURSE, nurse_secret, 1, batch=True),
    )
    assert len(outcomes) == 1 and isinstance(outcomes[0].refused, SignatureRefused)
    assert _history(world) == after
