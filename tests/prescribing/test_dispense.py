"""``$lookup`` and ``$dispense``: a pharmacy fills a prescription by its code, part then the rest,
never beyond it, never twice for one invoice, and refuses what may not be sold — writing nothing
when it refuses (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.signing import TotpConfirmation, sign_visit
from sokhoe.clinic.verify import verify_signature
from sokhoe.errors import Forbidden, InvalidRequest, NotFound
from sokhoe.operations.dispense import run_dispense, run_lookup
from sokhoe.operations.prescribe import run_prescribe
from sokhoe.prescribing.catalogue import DRUG_SYSTEM
from sokhoe.prescribing.code import CODE_SYSTEM
from sokhoe.prescribing.dispense import BATCH, NotDispensable
from sokhoe.prescribing.national.outbox import rows
from sokhoe.prescribing.pharmacy import CONTROLLED_LICENCE, is_pharmacy, national_code
from sokhoe.prescribing.prescribe import Issued
from sokhoe.registry.facilities import build_registry, to_fhir
from sokhoe.store.sql import SqlStore
from tests.api_helpers import client_auth
from tests.conftest import BASE, module_store
from tests.prescribing.rx_world import (
    PASSWORD,
    A,
    B,
    C,
    P,
    Q,
    RxWorld,
    line,
    make_rx_world,
    parameters,
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rx(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RxWorld]:
    folder = tmp_path_factory.mktemp("dispense")
    store: SqlStore = module_store(request, folder, "dispense")
    yield make_rx_world(folder, BASE, store if request.param == "postgres" else None)
    store.close()


def now() -> datetime:
    return datetime.now(UTC)


def issue(rx: RxWorld, *lines: dict[str, Any], facility: str = A) -> tuple[str, Issued]:
    """A person with a prescription issued at ``facility`` today; (Patient id, the issue)."""
    pid, eid = rx.person(facility, "Vũ Thị Mai")
    doctor = rx.doctor({A: "bs.an", B: "bs.b", C: "bs.c"}[facility], facility)
    issued = run_prescribe(doctor, parameters(pid, eid, list(lines)), now())
    return pid, issued


def by_drug(issued: Issued) -> dict[str, str]:
    return {r["medicationCodeableConcept"]["coding"][0]["code"]: r["id"] for r in issued.requests}


def body(code: str, invoice: str, *items: tuple[str, float], **parts: Any) -> dict[str, Any]:
    """A ``$dispense`` Parameters: (MedicationRequest id, quantity) per line; ``parts`` are added
    to every line (lot, expiry, substitution)."""
    params: list[dict[str, Any]] = [
        {"name": "code", "valueString": code},
        {"name": "invoice", "valueString": invoice},
    ]
    for rid, quantity in items:
        line_parts: list[dict[str, Any]] = [
            {"name": "request", "valueReference": {"reference": f"MedicationRequest/{rid}"}},
            {"name": "quantity", "valueQuantity": {"value": quantity}},
            *({"name": k, **v} for k, v in parts.items()),
        ]
        params.append({"name": "line", "part": line_parts})
    return {"resourceType": "Parameters", "parameter": params}


def lookup(repo: GuardedRepository, code: str, when: datetime | None = None) -> Any:
    return run_lookup(
        repo,
        {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code}]},
        when or now(),
    )


def written(rx: RxWorld, code: str) -> tuple[int, list[tuple[str, int]]]:
    """How many MedicationDispenses exist, and each line of ``code`` with its version."""
    query = rx.platform.parse_query("MedicationDispense", [("_summary", "count")])
    total = rx.platform.search(query).total or 0
    lines = rx.platform.search(
        rx.platform.parse_query(
            "MedicationRequest", [("group-identifier", f"{CODE_SYSTEM}|{code}")]
        )
    ).matches
    return total, sorted((m.id, m.version_id) for m in lines)


def reports(rx: RxWorld, code: str) -> list[Any]:
    """The sales of ``code`` queued for the national prescription system."""
    return [r for r in rows(rx.platform.auditor.engine, [code]) if r.kind == "dispensing"]


def test_part_then_the_rest_then_a_clear_refusal(rx: RxWorld) -> None:
    _pid, issued = issue(rx, line("PARACETAMOL-500"), line("AMLODIPIN-5", per_day=1, days=7))
    ids = by_drug(issued)
    para, amlo = ids["PARACETAMOL-500"], ids["AMLODIPIN-5"]
    chau = rx.pharmacist("ds.chau", P)
    typed = issued.code.upper()  # typed or scanned in any case
    found = lookup(chau, typed)
    assert (found.code, found.kind, found.state) == (issued.code, "C", "issued")
    assert {(x.id, x.prescribed, x.dispensed, x.remaining) for x in found.lines} == {
        (para, 15, 0, 15),
        (amlo, 7, 0, 7),
    }
    assert found.valid_until - found.valid_from == timedelta(days=5)

    first = run_dispense(chau, body(typed, "HD-0001", (para, 10)), now())
    assert (first.state, first.replayed, len(first.dispenses)) == ("partially-dispensed", False, 1)
    (given,) = first.dispenses
    assert given["status"] == "completed" and given["quantity"]["value"] == 10
    assert given["authorizingPrescription"] == [{"reference": f"MedicationRequest/{para}"}]
    assert given["performer"][0]["actor"]["display"] == "DS. ds.chau"
    assert given["performer"][1]["actor"]["reference"] == f"Organization/org-{P}"
    assert given["subject"] == issued.requests[0]["subject"]
    (queued,) = reports(rx, issued.code)
    assert (queued.facility, queued.key) == (P, f"{issued.code.upper()}:dispensing:{P}:HD-0001")
    assert queued.payload["ma_dinh_danh_co_so_cung_ung_thuoc"] == "HNI-NT-000123"
    assert queued.payload["thong_tin_thuoc"][0]["so_luong_ban"] == 10
    partly = lookup(chau, issued.code)
    assert partly.state == "partially-dispensed"
    assert {(x.id, x.remaining) for x in partly.lines} == {(para, 5), (amlo, 7)}
    in_state = rx.platform.search(
        rx.platform.parse_query("MedicationRequest", [("dispensing-state", "partially-dispensed")])
    )
    assert {para, amlo} <= {m.id for m in in_state.matches}

    rest = run_dispense(
        chau,
        body(
            issued.code,
            "HD-0002",
            (para, 5),
            (amlo, 7),
            lot={"valueString": "L2309"},
            expiry={"valueDate": "2028-03-31"},
        ),
        now(),
    )
    assert rest.state == "completed" and len(rest.dispenses) == 2
    batch = rest.dispenses[0]["extension"][0]
    assert batch["url"] == BATCH
    assert {"url": "lotNumber", "valueString": "L2309"} in batch["extension"]
    assert {"url": "expirationDate", "valueDate": "2028-03-31"} in batch["extension"]
    done = rx.platform.search(
        rx.platform.parse_query(
            "MedicationRequest",
            [("group-identifier", f"{CODE_SYSTEM}|{issued.code}"), ("status", "completed")],
        )
    )
    assert {m.id for m in done.matches} == {para, amlo}
    assert lookup(chau, issued.code).state == "completed"

    before = written(rx, issued.code)
    with pytest.raises(NotDispensable) as refused:
        run_dispense(rx.pharmacist("ds.phuc", Q), body(issued.code, "Q-1", (amlo, 1)), now())
    assert refused.value.status == 409
    assert "already dispensed in full" in refused.value.outcome["issue"][0]["diagnostics"]
    assert written(rx, issued.code) == before
    assert len(reports(rx, issued.code)) == 2  # two sales reported, the refusal none


def test_what_may_not_be_sold_is_refused_and_nothing_written(rx: RxWorld) -> None:
    _pid, issued = issue(rx, line("PARACETAMOL-500", substitution={"allowedBoolean": False}))
    (para,) = by_drug(issued).values()
    _other, elsewhere = issue(rx, line("AMLODIPIN-5", per_day=1, days=7))
    chau = rx.pharmacist("ds.chau", P)
    before = written(rx, issued.code)
    substituted = {"substitution": {"part": [{"name": "reason", "valueString": "Hết hàng"}]}}
    cases: list[tuple[dict[str, Any], datetime, str]] = [
        (
            body(issued.code, "X-1", (para, 16)),
            now(),
            "more than remains (15 Viên: 0 Viên of 15 Viên already dispensed)",
        ),
        (body(issued.code, "X-2", (para, 5)), now() + timedelta(days=5, hours=1), "expired"),
        (
            body(issued.code, "X-3", (elsewhere.requests[0]["id"], 1)),
            now(),
            f"is not a line of prescription {issued.code}",
        ),
        (body(issued.code, "X-4", (para, 5), **substituted), now(), "did not allow substituting"),
    ]
    for asked, when, reason in cases:
        with pytest.raises(NotDispensable) as refused:
            run_dispense(chau, asked, when)
        assert reason in refused.value.outcome["issue"][0]["diagnostics"], reason
    with pytest.raises(NotFound):
        run_dispense(chau, body(f"{A}zzzzzzz-C", "X-5", (para, 1)), now())
    with pytest.raises(InvalidRequest, match="14 characters"):
        run_dispense(chau, body("not-a-code", "X-6", (para, 1)), now())
    not_pharmacies = [
        rx.doctor("bs.an", A),  # the prescriber's own doctor
        rx.pharmacist("tieptan", A, role="receptionist"),
        rx.pharmacist("ds.b", B),  # a hospital's pharmacist: fills only B's own prescriptions
        rx.pharmacist("bs.p", P, role="doctor"),  # the wrong role at a pharmacy
    ]
    for caller in not_pharmacies:
        with pytest.raises(Forbidden):
            run_dispense(caller, body(issued.code, "X-7", (para, 1)), now())
        with pytest.raises(Forbidden):
            lookup(caller, issued.code)
    assert written(rx, issued.code) == before  # no refusal wrote a dispense or a version
    assert lookup(chau, issued.code, now() + timedelta(days=6)).state == "expired"
    cancelling = rx.platform.for_caller(rx.platform.principal, owns=frozenset({"prescription"}))
    cancelled = {**issued.requests[0], "status": "cancelled"}
    cancelling.update(cancelled, "MedicationRequest", para)
    before = written(rx, issued.code)
    with pytest.raises(NotDispensable, match="was cancelled"):
        run_dispense(chau, body(issued.code, "X-8", (para, 1)), now())
    assert lookup(chau, issued.code).state == "cancelled"
    assert written(rx, issued.code) == before


def test_a_facility_dispensary_fills_its_own_prescriptions_only(rx: RxWorld) -> None:
    _pid, own = issue(rx, line("PARACETAMOL-500"), facility=B)
    (para,) = by_drug(own).values()
    done = run_dispense(rx.pharmacist("ds.b", B), body(own.code, "B-1", (para, 15)), now())
    assert done.state == "completed"
    assert done.dispenses[0]["performer"][1]["actor"]["reference"] == f"Organization/org-{B}"


def test_the_invoice_makes_a_retry_safe(rx: RxWorld) -> None:
    _pid, issued = issue(rx, line("PARACETAMOL-500"), line("AMLODIPIN-5", per_day=1, days=7))
    ids = by_drug(issued)
    para = ids["PARACETAMOL-500"]
    chau = rx.pharmacist("ds.chau", P)
    first = run_dispense(chau, body(issued.code, "HD-77", (para, 6)), now())
    after_first = written(rx, issued.code)
    again = run_dispense(chau, body(issued.code, "HD-77", (para, 6)), now())
    assert again.replayed and [d["id"] for d in again.dispenses] == [
        d["id"] for d in first.dispenses
    ]
    assert written(rx, issued.code) == after_first
    assert [r.facility for r in reports(rx, issued.code)] == [P]  # queued once
    with pytest.raises(NotDispensable, match="already recorded for other lines"):
        run_dispense(chau, body(issued.code, "HD-77", (para, 7)), now())
    assert written(rx, issued.code) == after_first
    # invoice numbers are the pharmacy's own: another pharmacy's HD-77 is another sale
    other = run_dispense(rx.pharmacist("ds.phuc", Q), body(issued.code, "HD-77", (para, 2)), now())
    assert not other.replayed
    assert [r.key.split(":", 2)[2] for r in reports(rx, issued.code)] == [
        f"{P}:HD-77",
        f"{Q}:HD-77",
    ]
    assert {(x.id, x.dispensed) for x in lookup(chau, issued.code).lines} >= {(para, 8)}


def test_a_substitution_keeps_what_was_given_and_why(rx: RxWorld) -> None:
    _pid, issued = issue(rx, line("AMLODIPIN-5", per_day=1, days=7))
    (amlo,) = by_drug(issued).values()
    reason = "Hết biệt dược, thay thuốc generic cùng hoạt chất"
    substitution = {
        "part": [
            {"name": "reason", "valueString": reason},
            {"name": "type", "valueCode": "TE"},
            {
                "name": "medication",
                "valueCodeableConcept": {
                    "coding": [{"system": DRUG_SYSTEM, "code": "ENALAPRIL-5"}]
                },
            },
        ]
    }
    done = run_dispense(
        rx.pharmacist("ds.chau", P),
        body(issued.code, "HD-S1", (amlo, 7), substitution=substitution),
        now(),
    )
    given = done.dispenses[0]["substitution"]
    assert given["wasSubstituted"] is True and given["reason"] == [{"text": reason}]
    assert given["type"]["coding"][0]["code"] == "TE"
    handed = done.dispenses[0]["medicationCodeableConcept"]
    assert handed["coding"][0]["code"] == "ENALAPRIL-5" and "Enalapril" in handed["text"]


@pytest.fixture(scope="module")
def api(rx: RxWorld) -> Iterator[TestClient]:
    with TestClient(rx.world.app, base_url=BASE) as client:
        yield client


def staff(api: TestClient, username: str) -> dict[str, str]:
    r = api.post("/auth/staff/sign-in", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_over_http_and_no_other_way_to_write_a_dispense(rx: RxWorld, api: TestClient) -> None:
    pid, issued = issue(rx, line("PARACETAMOL-500"))
    (para,) = by_drug(issued).values()
    chau = staff(api, "ds.chau")
    code = {
        "resourceType": "Parameters",
        "parameter": [{"name": "code", "valueString": issued.code}],
    }
    found = api.post("/fhir/MedicationRequest/$lookup", json=code, headers=chau)
    assert found.status_code == 200, found.text
    names = [p["name"] for p in found.json()["parameter"]]
    assert names == ["code", "type", "state", "validity", "patient", "line"]
    r = api.post(
        "/fhir/MedicationDispense/$dispense",
        json=body(issued.code, "W-1", (para, 15)),
        headers=chau,
    )
    assert r.status_code == 201, r.text
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle"
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["MedicationDispense"]
    retry = api.post(
        "/fhir/MedicationDispense/$dispense",
        json=body(issued.code, "W-1", (para, 15)),
        headers=chau,
    )
    assert retry.status_code == 201
    assert retry.json()["entry"][0]["resource"]["id"] == bundle["entry"][0]["resource"]["id"]
    refused = api.post(
        "/fhir/MedicationDispense/$dispense", json=body(issued.code, "W-2", (para, 1)), headers=chau
    )
    assert refused.status_code == 409
    assert refused.json()["resourceType"] == "OperationOutcome"
    doctor = api.post(
        "/fhir/MedicationDispense/$dispense",
        json=body(issued.code, "W-3", (para, 1)),
        headers=staff(api, "bs.c"),
    )
    assert doctor.status_code == 403
    # a plain create, an update, a transaction: none writes a MedicationDispense
    before = written(rx, issued.code)
    forged = {**bundle["entry"][0]["resource"]}
    forged.pop("id")
    forged.pop("meta")
    system = client_auth(api, ["system/*.cruds"], P)
    for headers in (chau, system):
        assert api.post("/fhir/MedicationDispense", json=forged, headers=headers).status_code == 403
    mine = bundle["entry"][0]["resource"]
    changed = {**mine, "quantity": {"value": 1, "unit": "viên"}}
    put = api.put(f"/fhir/MedicationDispense/{mine['id']}", json=changed, headers=chau)
    assert put.status_code == 403
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": forged, "request": {"method": "POST", "url": "MedicationDispense"}}],
    }
    assert api.post("/fhir", json=transaction, headers=system).status_code == 403
    assert written(rx, issued.code) == before
    assert pid


def test_the_registry_pharmacies_carry_their_national_code() -> None:
    registry = build_registry(7)
    pharmacies = [f for f in registry.facilities if f.level == "pharmacy"]
    station = next(f for f in registry.facilities if f.level == "commune")
    assert len(pharmacies) >= 34
    for f in pharmacies[:5]:
        org, _location = to_fhir(f, registry.authority(f.authority))
        assert is_pharmacy(org) and national_code(org) == f"NT{f.code}"
    org, _location = to_fhir(station, registry.authority(station.authority))
    assert not is_pharmacy(org) and national_code(org) is None


def test_a_signed_prescription_is_dispensed_and_its_signature_still_holds(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Đinh Thị Hạnh")
    doctor = rx.doctor("bs.an", A)
    issued = run_prescribe(doctor, parameters(pid, eid, [line("PARACETAMOL-500")]), now())
    enc = dict(rx.platform.read("Encounter", eid).content or {})
    rx.platform.update({**enc, "status": "finished"}, "Encounter", eid)
    totp = pyotp.TOTP(rx.world.totp_secret).now()
    engine = rx.world.app.state.tokens.engine
    provenance = sign_visit(doctor, eid, TotpConfirmation(engine, "bs.an", totp))
    (para,) = by_drug(issued).values()
    assert any(
        t["reference"].startswith(f"MedicationRequest/{para}/") for t in provenance["target"]
    )
    chau = rx.pharmacist("ds.chau", P)
    assert run_dispense(chau, body(issued.code, "SIG-1", (para, 5)), now()).state == (
        "partially-dispensed"
    )
    assert run_dispense(chau, body(issued.code, "SIG-2", (para, 10)), now()).state == "completed"
    assert verify_signature(rx.platform, provenance["id"]).valid


def test_a_controlled_prescription_only_at_a_pharmacy_licensed_for_its_type(rx: RxWorld) -> None:
    """The wrong-type refusal: an H prescription (diazepam) at a pharmacy without a licence for
    controlled medicines is refused and nothing is written; a licensed one fills it, and the
    unlicensed one still fills ordinary prescriptions."""
    _, issued = issue(rx, line("DIAZEPAM-5", per_day=1, days=5))
    assert issued.code.endswith("-H")
    (rid,) = by_drug(issued).values()
    before = written(rx, issued.code)
    with pytest.raises(NotDispensable, match="not licensed") as refused:
        run_dispense(rx.pharmacist("ds.chau", P), body(issued.code, "HD-H-1", (rid, 5)), now())
    assert refused.value.status == 409 and written(rx, issued.code) == before
    licensed = dict(rx.platform.read("Organization", f"org-{Q}").content or {})
    licensed["extension"] = [{"url": CONTROLLED_LICENCE, "valueCode": "H"}]
    rx.platform.update(licensed, "Organization", f"org-{Q}")
    done = run_dispense(rx.pharmacist("ds.phuc", Q), body(issued.code, "HD-H-2", (rid, 5)), now())
    assert done.state == "completed"
    _, ordinary = issue(rx, line("PARACETAMOL-500", days=2))
    (para,) = by_drug(ordinary).values()
    sold = run_dispense(
        rx.pharmacist("ds.chau", P), body(ordinary.code, "HD-C-1", (para, 6)), now()
    )
    assert sold.state == "completed"
