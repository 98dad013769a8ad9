"""Conflicting edits wait for a person: a review ``Task`` holding both versions.

A resource edited at the station and at the province since the last sync cannot be merged
by a machine (which blood pressure is right?). Neither side is overwritten: the station's
version stays current locally, the province's upstream, and a Task in the local review queue
points at both (as the MPI's match reviews do, ``sokhoe.mpi.links``), with the upstream
content attached so the station can judge it offline. ``sokhoe sync`` lists open conflicts
and holds those resources until the Task is completed.
See: https://hl7.org/fhir/R4/task.html
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.links import review_task
from sokhoe.search.index import compartment_patient_id, extract_index

TASK_CODE = "https://fhir.sokhoe.vn/CodeSystem/sync-task"
"""Code system of the sync review Tasks."""


def conflict_task(
    local: FhirRepository,
    upstream_base: str,
    resource_type: str,
    rid: str,
    local_content: dict[str, Any] | None,
    local_version: int,
    upstream_content: dict[str, Any] | None,
    upstream_version: int,
    reason: str,
) -> str:
    """Queue a review of two diverging versions of one resource; returns the Task id."""
    ref = f"{resource_type}/{rid}"
    inputs: list[dict[str, Any]] = [
        {
            "type": {"text": "local-version"},
            "valueReference": {"reference": f"{ref}/_history/{local_version}"},
        },
        {
            "type": {"text": "upstream-version"},
            "valueUrl": f"{upstream_base.rstrip('/')}/{ref}/_history/{upstream_version}",
        },
    ]
    if upstream_content is not None:
        inputs.append(
            {
                "type": {"text": "upstream-content"},
                "valueAttachment": {
                    "contentType": "application/fhir+json",
                    "data": base64.b64encode(orjson.dumps(upstream_content)).decode("ascii"),
                },
            }
        )
    task = review_task(
        "review-conflict", "Review a conflict", reason, ref, local.clock(), inputs, system=TASK_CODE
    )
    content = local_content or upstream_content
    patient = compartment_patient_id(content, extract_index(content)) if content else None
    if resource_type == "Patient":
        patient = rid
    if patient is not None:
        task["for"] = {"reference": f"Patient/{patient}"}
    return local.update(task, "Task", task["id"]).resource.id


__all__ = ["TASK_CODE", "conflict_task"]
