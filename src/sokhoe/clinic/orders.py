"""Orders for lab tests and imaging, with the repeated-test alert at the moment of ordering.

The platform's seed promise is "no repeated tests": a shared record is worth most when a doctor
about to order a blood glucose sees that a station across the province measured it nine days
ago, with the value. So before an order is placed the same test done at any facility in the last
30 days is looked up *through the caller's door* (the history written elsewhere shows only when
the policy opens it; the alert says so when it cannot look) and shown with result and date; the
doctor then places the order anyway (giving the reason that is kept on it) or drops it.

Orders come from the facility's service list (its price list: what it can do and bill).
See: https://hl7.org/fhir/R4/servicerequest.html
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.drafts import Visit
from sokhoe.clinic.records import find, text_of
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.references import reference_id
from sokhoe.fhir.resources import format_instant
from sokhoe.interop.claims.catalogue import Catalogue, PriceItem
from sokhoe.messages import Message

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
SERVICE_CODES: Final = "https://fhir.sokhoe.vn/CodeSystem/facility-service"
REPEAT_WINDOW: Final = timedelta(days=30)
CATEGORY: Final = {
    "lab": ("108252007", "Laboratory procedure"),
    "imaging": ("363679005", "Imaging"),
}


@dataclass(frozen=True)
class Service:
    """One orderable item of the facility's list."""

    key: str
    kind: str
    """``lab`` (``key`` is LOINC) or ``imaging`` (``key`` is the modality[|description])."""
    name: str
    code: str
    """The service code billed (``MA_DICH_VU``)."""


@dataclass(frozen=True)
class Earlier:
    """The same test done recently: what the alert shows."""

    when: str
    value: str
    facility: str


def services(catalogue: Catalogue) -> list[Service]:
    """Lab tests and imaging the facility's price list offers, by name."""
    return sorted(
        (
            Service(_key(item), item.category, item.name, item.code)
            for item in catalogue.items.values()
            if item.category in ("lab", "imaging")
        ),
        key=lambda s: (s.kind, s.name),
    )


def _key(item: PriceItem) -> str:
    return f"{item.category}:{item.key}"


def service(catalogue: Catalogue, key: str) -> Service:
    for found in services(catalogue):
        if found.key == key:
            return found
    raise InvalidRequest(
        Message("Choose a test or imaging service from the facility's list"), "service"
    )


def _value(obs: dict[str, Any]) -> str:
    quantity = obs.get("valueQuantity")
    if isinstance(quantity, dict) and quantity.get("value") is not None:
        return f"{quantity['value']} {quantity.get('unit', '')}".strip()
    if obs.get("valueString"):
        return str(obs["valueString"])
    return text_of(obs.get("valueCodeableConcept"))


def earlier(
    repo: GuardedRepository, patient_id: str, chosen: Service, now: datetime
) -> list[Earlier]:
    """The same lab test (by LOINC) or imaging (by modality) for this patient in the last 30
    days, newest first, as far as the caller may see."""
    since = format_instant(now - REPEAT_WINDOW)
    subject = ("patient", f"Patient/{patient_id}")
    code = chosen.key.split(":", 1)[1]
    if chosen.kind == "lab":
        found = find(
            repo,
            "Observation",
            [subject, ("code", f"{LOINC}|{code}"), ("date", f"ge{since}"), ("_sort", "-date")],
            10,
        )
        return [
            Earlier(str(o.get("effectiveDateTime", "")), _value(o), _where(repo, o)) for o in found
        ]
    modality = code.split("|", 1)[0]
    studies = find(
        repo,
        "ImagingStudy",
        [subject, ("modality", modality), ("started", f"ge{since}"), ("_sort", "-started")],
        10,
    )
    return [
        Earlier(str(s.get("started", "")), str(s.get("description", "")), _where(repo, s))
        for s in studies
    ]


def _where(repo: GuardedRepository, resource: dict[str, Any]) -> str:
    """The facility the result comes from (its Encounter's provider), for the alert."""
    enc_id = reference_id(resource.get("encounter"), "Encounter")
    if enc_id is None:
        return ""
    found = find(repo, "Encounter", [("_id", enc_id)], 1)
    if not found:
        return ""
    return str((found[0].get("serviceProvider") or {}).get("display", ""))


def place(
    repo: GuardedRepository,
    visit: Visit,
    chosen: Service,
    now: datetime,
    requester: dict[str, Any],
    repeat_reason: str | None = None,
) -> dict[str, Any]:
    """Write the order (``ServiceRequest``, active); a repeat keeps its reason in ``note``."""
    code = chosen.key.split(":", 1)[1]
    category = CATEGORY[chosen.kind]
    coding = (
        {"system": LOINC, "code": code, "display": chosen.name}
        if chosen.kind == "lab"
        else {"system": SERVICE_CODES, "code": chosen.code, "display": chosen.name}
    )
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": category[0], "display": category[1]}]}],
        "code": {"coding": [coding], "text": chosen.name},
        "subject": {"reference": f"Patient/{visit.patient_id}"},
        "encounter": {"reference": f"Encounter/{visit.id}"},
        "authoredOn": format_instant(now),
        "requester": requester,
    }
    if repeat_reason:
        request["note"] = [{"text": f"Repeat within 30 days: {repeat_reason}"}]
    return dict(repo.create(request, "ServiceRequest").resource.content or {})


def of_visit(repo: GuardedRepository, visit: Visit) -> list[dict[str, Any]]:
    return find(repo, "ServiceRequest", [("encounter", f"Encounter/{visit.id}")], 50)


__all__ = ["Earlier", "Service", "earlier", "of_visit", "place", "service", "services"]
