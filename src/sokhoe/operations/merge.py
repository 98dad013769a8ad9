"""``Patient/$merge``, ``Patient/$unmerge`` and resolving a queued match review.

The parameter names follow the FHIR R5 ``Patient/$merge`` (``source-patient``,
``target-patient``); R4 defines no merge operation. The caller names the deciding person in
``performer``; every decision is a Provenance. Each id is read the same way (``Patient/x`` or
a bare ``x``) for the authorisation and for the work: the caller must be allowed both records.
See: https://hl7.org/fhir/R5/patient-operation-merge.html
"""

from __future__ import annotations

from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.mpi.links import Agent, merge, resolve_review, unmerge


def _definition(code: str, params: list[tuple[str, str, int]]) -> dict[str, Any]:
    return {
        "resourceType": "OperationDefinition",
        "id": f"Patient-{code}",
        "url": f"https://fhir.sokhoe.vn/OperationDefinition/Patient-{code}",
        "name": code.title().replace("-", ""),
        "status": "active",
        "kind": "operation",
        "code": code,
        "resource": ["Patient"],
        "system": False,
        "type": True,
        "instance": False,
        "parameter": [
            {"name": n, "use": "in", "min": m, "max": "1", "type": t} for n, t, m in params
        ]
        + [{"name": "return", "use": "out", "min": 1, "max": "1", "type": "Provenance"}],
    }


MERGE_DEFINITION = _definition(
    "merge",
    [
        ("source-patient", "Reference", 1),
        ("target-patient", "Reference", 1),
        ("reason", "string", 1),
        ("performer", "string", 1),
    ],
)
UNMERGE_DEFINITION = _definition(
    "unmerge",
    [("source-patient", "Reference", 1), ("reason", "string", 1), ("performer", "string", 1)],
)


def _patient_id(params: dict[str, list[dict[str, Any]]], name: str) -> str:
    found = params.get(name, [])
    if len(found) != 1:
        raise InvalidRequest(f"Parameter '{name}' is required once", name)
    p = found[0]
    ref = (p.get("valueReference") or {}).get("reference") or p.get("valueString")
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidRequest(f"'{name}' must be a Reference to a Patient", name)
    ref = ref.strip()
    if ref.startswith("Patient/"):
        ref = ref.split("/", 1)[1]
    elif "/" in ref:
        raise InvalidRequest(f"'{name}' must refer to a Patient, got '{ref}'", name)
    return ref


def _required(params: dict[str, list[dict[str, Any]]], name: str) -> str:
    value = string_parameter(params, name)
    if value is None:
        raise InvalidRequest(f"Parameter '{name}' is required", name)
    return value


def run_merge(repo: GuardedRepository, body: Any) -> dict[str, Any]:
    params = parameters_by_name(body)
    return merge(
        repo,
        _patient_id(params, "source-patient"),
        _patient_id(params, "target-patient"),
        Agent(_required(params, "performer")),
        _required(params, "reason"),
    )


def run_unmerge(repo: GuardedRepository, body: Any) -> dict[str, Any]:
    params = parameters_by_name(body)
    return unmerge(
        repo,
        _patient_id(params, "source-patient"),
        Agent(_required(params, "performer")),
        _required(params, "reason"),
    )


def run_resolve(repo: GuardedRepository, task_id: str, body: Any) -> dict[str, Any]:
    """``decision`` = accept | reject, with ``reason`` and ``performer``."""
    params = parameters_by_name(body)
    decision = _required(params, "decision")
    if decision not in ("accept", "reject"):
        raise InvalidRequest("decision must be 'accept' or 'reject'", "decision")
    return resolve_review(
        repo,
        task_id,
        decision == "accept",
        Agent(_required(params, "performer")),
        _required(params, "reason"),
    )
