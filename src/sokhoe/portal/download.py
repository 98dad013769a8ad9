"""Take my record with me (*tải hồ sơ*): the whole record of the profile shown, as a file.

The personal-data law (Law 91/2025/QH15, Decree 356/2025) gives a person their data in a form
they can take elsewhere. The file is what ``Patient/$everything`` answers — a ``searchset``
Bundle of every resource of the record the citizen may see, read through their door, every
page of it — so another FHIR system reads it as it would read our API. The door audits the
read; the download is then recorded as an export (the data left the system), and the printed
book as a print (``portal/printed.py``).
See: https://hl7.org/fhir/R4/patient-operation-everything.html and
https://hl7.org/fhir/R4/bundle.html#searchset
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.fhir.resources import format_instant
from sokhoe.portal.record import everything


def record_bundle(repo: GuardedRepository, patient_id: str, now: datetime) -> dict[str, Any]:
    """The record of ``patient_id`` as one ``searchset`` Bundle (the Patient first), the
    export audited."""
    found = sorted(
        (r for r in everything(repo, patient_id) if r.content is not None),
        key=lambda r: (r.resource_type != "Patient", r.resource_type, r.id),
    )
    base = repo.base_url.rstrip("/")
    repo.record_access(
        "export",
        [patient_id],
        [f"Patient/{patient_id}/$everything"],
        reason="the citizen downloaded their record (FHIR JSON)",
    )
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": format_instant(now),
        "total": len(found),
        "link": [{"relation": "self", "url": f"{base}/Patient/{patient_id}/$everything"}],
        "entry": [
            {
                "fullUrl": f"{base}/{r.resource_type}/{r.id}",
                "resource": r.content,
                "search": {"mode": "match"},
            }
            for r in found
        ],
    }


def record_printed(repo: GuardedRepository, patient_id: str, shown: int) -> None:
    """Audit the printable book the citizen downloaded (a paper copy leaves the system as an
    export does)."""
    repo.record_access(
        "print",
        [patient_id],
        [f"Patient/{patient_id}"],
        reason=f"the citizen downloaded their health book (PDF, {shown} resources)",
    )


__all__ = ["record_bundle", "record_printed"]
