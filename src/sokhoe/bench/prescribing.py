"""``sokhoe bench-prescribing`` (or ``python -m sokhoe.bench.prescribing``): ``$prescribe`` with
every check on, for patients with a long medication history.

On a SQLite file in a scratch folder: the full reference catalogue, a commune station (A) and a
district hospital (B), and ``--patients`` people, each with ``--past`` prescriptions already
issued at A and B over the last months (active ones among them, so duplicate therapy and
interactions are looked for against a real history) and an allergy. Then, for each person,
one 3-line prescription is issued in a visit at A through the same service the page and the
FHIR operation use (the door, the checks, the DetectedIssues, the national outbox row).

Then every prescription is dispensed in full by ``--pharmacies`` pharmacies at once (a thread
each, the same service as ``$dispense``): throughput and latency.

The floor, measured in the same run on the same file: writing the same three coded
``MedicationRequest``s through the door with no checks (what issuing costs at the least).
The issue's target: ``$prescribe`` p95 reported with all checks on a patient with 50 past
prescriptions (no fixed number; the ratio to the floor says what the checks cost).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from sokhoe.access.accounts import ROLE_SCOPES
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.principal import Principal
from sokhoe.bench.stats import percentiles
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.operations.prescribe import run_prescribe
from sokhoe.prescribing import publish_reference
from sokhoe.prescribing.cancel import OWNS
from sokhoe.prescribing.catalogue import DRUG_SYSTEM
from sokhoe.prescribing.code import CODE_SYSTEM, new_code
from sokhoe.prescribing.dispense import Handed, dispense
from sokhoe.prescribing.pharmacy import pharmacy_organization
from sokhoe.store.sql import SqlStore

A, B = "01001", "01002"
HISTORY: Final = (
    "AMLODIPIN-5",
    "METFORMIN-500",
    "LOSARTAN-50",
    "SIMVASTATIN-20",
    "OMEPRAZOL-20",
    "PARACETAMOL-500",
    "IBUPROFEN-400",
    "CLARITHROMYCIN-500",
    "ENALAPRIL-5",
    "SPIRONOLACTON-25",
)
"""Medicines of the past prescriptions (cycled)."""
NEW: Final = ("AMLODIPIN-10", "PARACETAMOL-500", "WARFARIN-5")
"""The prescription issued: a duplicate of a current medicine, and an interaction."""


def _line(code: str, days: int = 10) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/x"},
        "medicationCodeableConcept": {"coding": [{"system": DRUG_SYSTEM, "code": code}]},
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "viên"}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "ngày"}},
    }


def _coded(code: str, medicine: str, pid: str, eid: str, when: datetime) -> dict[str, Any]:
    return {
        **_line(medicine, 30),
        "id": new_id(),
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "authoredOn": format_instant(when),
        "groupIdentifier": {"system": CODE_SYSTEM, "value": code},
        "medicationCodeableConcept": {
            "coding": [{"system": DRUG_SYSTEM, "code": medicine}],
            "text": medicine,
        },
    }


def _encounter(pid: str, facility: str, when: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": new_id(),
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": format_instant(when), "end": format_instant(when)},
        "serviceProvider": {"reference": f"Organization/org-{facility}"},
    }


def build(repo: GuardedRepository, patients: int, past: int) -> list[tuple[str, str]]:
    """The world; (patient, today's visit at A) per person."""
    for code in (A, B):
        org: dict[str, Any] = {
            "resourceType": "Organization",
            "id": f"org-{code}",
            "name": f"Cơ sở {code}",
            "identifier": [{"system": FACILITY, "value": code}],
        }
        repo.update(org, "Organization", org["id"])
    publish_reference(repo)
    now = datetime.now(UTC)
    people = []
    for n in range(patients):
        pid = new_id()
        repo.update(
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"text": f"Người {n}"}],
                "birthDate": "1960-01-01",
                "gender": "male",
            },
            "Patient",
            pid,
        )
        allergy: dict[str, Any] = {
            "resourceType": "AllergyIntolerance",
            "id": new_id(),
            "patient": {"reference": f"Patient/{pid}"},
            "code": {"text": "Penicilin"},
        }
        repo.update(allergy, "AllergyIntolerance", allergy["id"])
        today = _encounter(pid, A, now)
        repo.update(today, "Encounter", today["id"])
        with repo.operation(
            "bench-history", resource_type="MedicationRequest", interactions=["create"], owns=OWNS
        ) as tx:
            for k in range(past):
                when = now - timedelta(days=3 * (past - k))
                visit = _encounter(pid, (A, B)[k % 2], when)
                repo.update(visit, "Encounter", visit["id"], tx=tx)
                line = _coded(
                    new_code((A, B)[k % 2], "C"), HISTORY[k % len(HISTORY)], pid, visit["id"], when
                )
                repo.update(line, "MedicationRequest", line["id"], tx=tx)
        people.append((pid, str(today["id"])))
    return people


def _pharmacies(repo: GuardedRepository, count: int) -> list[GuardedRepository]:
    """``count`` registry pharmacies, each with its pharmacist acting through the door."""
    out = []
    for n in range(count):
        code = f"01{900 + n}"
        oid = f"bench-pharmacy-{code}"
        repo.update(
            pharmacy_organization(oid, code, f"Nhà thuốc {n}", f"BENCH-NT-{n}"), "Organization", oid
        )
        who = Principal(
            "staff", f"ds.{n}", f"DS. {n}", "pharmacist", code, scopes=ROLE_SCOPES["pharmacist"]
        )
        out.append(repo.for_caller(who))
    return out


def _dispense_concurrently(
    repo: GuardedRepository,
    issued: list[tuple[str, list[dict[str, Any]]]],
    pharmacies: list[GuardedRepository],
) -> dict[str, Any]:
    """Each prescription dispensed in full by one of the pharmacies, all of them at once (one
    thread each, taking prescriptions in turn): what a town's counters do at opening time."""
    latencies: list[float] = []
    lock = threading.Lock()

    def counter(k: int) -> None:
        for code, lines in issued[k :: len(pharmacies)]:
            handed = [
                Handed(i, str(r["id"]), Decimal(str(r["dispenseRequest"]["quantity"]["value"])))
                for i, r in enumerate(lines)
            ]
            started = time.perf_counter()
            dispense(
                pharmacies[k], code=code, invoice=f"B-{code}", handed=handed, now=datetime.now(UTC)
            )
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=counter, args=(k,)) for k in range(len(pharmacies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "pharmacies": len(pharmacies),
        "dispenses": len(latencies),
        "per_second": round(len(latencies) / wall, 1) if wall else None,
        "latency_ms": percentiles(latencies),
    }


def run(patients: int, past: int, pharmacy_count: int = 8) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="sokhoe-bench-rx-"))
    store = SqlStore(f"sqlite:///{folder / 'rx.db'}")
    repo = platform_repository(store, "https://bench.invalid/fhir")
    people = build(repo, patients, past)
    pharmacies = _pharmacies(repo, pharmacy_count)
    doctor = repo.for_caller(
        Principal("staff", "bs.bench", "BS. Bench", "doctor", A, scopes=ROLE_SCOPES["doctor"])
    )
    load_before = os.getloadavg()
    prescribe_ms, floor_ms = [], []
    findings = 0
    issued_codes: list[tuple[str, list[dict[str, Any]]]] = []
    for pid, eid in people:
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "patient", "valueReference": {"reference": f"Patient/{pid}"}},
                {"name": "encounter", "valueReference": {"reference": f"Encounter/{eid}"}},
                *(
                    {
                        "name": "line",
                        "part": [
                            {"name": "resource", "resource": _line(code)},
                            {"name": "override", "valueString": "bench"},
                        ],
                    }
                    for code in NEW
                ),
            ],
        }
        started = time.perf_counter()
        issued = run_prescribe(doctor, body, datetime.now(UTC))
        prescribe_ms.append((time.perf_counter() - started) * 1000)
        findings += len(issued.issues)
        issued_codes.append((issued.code, issued.requests))
        code = new_code(A, "C")
        lines = [_coded(code, m, pid, eid, datetime.now(UTC)) for m in NEW]
        started = time.perf_counter()
        with repo.operation(
            "bench-floor", resource_type="MedicationRequest", interactions=["create"], owns=OWNS
        ) as tx:
            for line in lines:
                repo.update(line, "MedicationRequest", line["id"], tx=tx)
        floor_ms.append((time.perf_counter() - started) * 1000)
    dispensing = _dispense_concurrently(repo, issued_codes, pharmacies)
    store.close()
    measured, floor = percentiles(prescribe_ms), percentiles(floor_ms)
    return {
        "dispense": dispensing,
        "bench": "prescribing",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "patients": patients,
        "past_prescriptions_per_patient": past,
        "lines_per_prescription": len(NEW),
        "findings_per_prescription": round(findings / max(patients, 1), 2),
        "prescribe_ms": measured,
        "floor_door_write_ms": floor,
        "ratio_p95_to_floor": round(measured["p95"] / floor["p95"], 1) if floor["p95"] else None,
        "machine": {
            "platform": platform.platform(),
            "nproc": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--past", type=int, default=50)
    parser.add_argument("--pharmacies", type=int, default=8)
    args = parser.parse_args(argv)
    report = run(args.patients, args.past, args.pharmacies)
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
